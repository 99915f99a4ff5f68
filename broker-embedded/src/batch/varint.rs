//! Kafka's variable-length integers: zigzag-encoded base-128 `varint` and `varlong`, as
//! record fields use them.

/// Reads a zigzag varint (at most 5 bytes).
#[inline]
pub(super) fn read_varint(data: &[u8], pos: &mut usize) -> Result<i32, &'static str> {
    // Fast path: one byte.
    if let Some(&b) = data.get(*pos) {
        if b < 0x80 {
            *pos += 1;
            return Ok(((b >> 1) as i32) ^ -((b & 1) as i32));
        }
    }
    let raw = read_unsigned(data, pos, 5)?;
    let raw = u32::try_from(raw).map_err(|_| "varint overflows 32 bits")?;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Reads a zigzag varlong (at most 10 bytes).
#[inline]
pub(super) fn read_varlong(data: &[u8], pos: &mut usize) -> Result<i64, &'static str> {
    // Fast path: one byte (a record's timestamp delta, most of the time).
    if let Some(&b) = data.get(*pos) {
        if b < 0x80 {
            *pos += 1;
            return Ok(((b >> 1) as i64) ^ -((b & 1) as i64));
        }
    }
    let raw = read_unsigned(data, pos, 10)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

#[inline]
pub(super) fn read_unsigned(
    data: &[u8],
    pos: &mut usize,
    max_bytes: usize,
) -> Result<u64, &'static str> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let b = *data.get(*pos).ok_or("varint runs past the record")?;
        *pos += 1;
        let bits = u64::from(b & 0x7f);
        let shift = 7 * i as u32;
        if shift == 63 && bits > 1 {
            return Err("varint overflows 64 bits");
        }
        value |= bits << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long")
}

pub(super) fn zigzag32(v: i32) -> u64 {
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

pub(super) fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(super) fn unsigned_len(v: u64) -> usize {
    // 1 byte per 7 bits, at least 1.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

pub(super) fn varint_len(v: i32) -> usize {
    unsigned_len(zigzag32(v))
}

pub(super) fn varlong_len(v: i64) -> usize {
    unsigned_len(zigzag64(v))
}

#[cfg(test)]
pub(super) fn put_unsigned(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[cfg(test)]
pub(super) fn put_varint(buf: &mut Vec<u8>, v: i32) {
    put_unsigned(buf, zigzag32(v));
}

#[cfg(test)]
pub(super) fn put_varlong(buf: &mut Vec<u8>, v: i64) {
    put_unsigned(buf, zigzag64(v));
}
