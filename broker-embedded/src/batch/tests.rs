use super::*;
use proptest::prelude::*;

fn record(ts: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> NewRecord {
    NewRecord {
        timestamp: ts,
        key: key.map(Bytes::copy_from_slice),
        value: value.map(Bytes::copy_from_slice),
        headers: Vec::new(),
    }
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A one-record batch as librdkafka writes it: empty key, value "hello kafka", one header
/// foo=bar, CreateTime 1641388919, no producer id.
const LIBRDKAFKA_BATCH: &str = "
    0000000000000000 0000004b 00000000 02 2724fecd 0000 00000000
    0000000061d59b77 0000000061d59b77 ffffffffffffffff ffff ffffffff 00000001
    32 00 00 00 00 16 68656c6c6f206b61666b61 02 06 666f6f 06 626172";

#[test]
fn reads_and_writes_the_bytes_librdkafka_writes() {
    let golden = Bytes::from(hex(LIBRDKAFKA_BATCH));
    let (batch, used) = decode_batch(&golden).unwrap();
    assert_eq!(used, golden.len());
    assert_eq!(batch.info.base_offset, 0);
    assert_eq!(batch.info.last_offset, 0);
    assert_eq!(batch.info.max_timestamp, 1641388919);
    assert_eq!(batch.info.producer_id, -1);
    assert_eq!(batch.info.timestamp_type, TimestampType::CreateTime);
    assert_eq!(batch.records.len(), 1);
    let r = &batch.records[0];
    assert_eq!(r.key.as_deref(), Some(&b""[..]));
    assert_eq!(r.value.as_deref(), Some(&b"hello kafka"[..]));
    assert_eq!(r.headers, vec![Header::new("foo", &b"bar"[..])]);

    let mut buf = Vec::new();
    let new = NewRecord {
        timestamp: 1641388919,
        key: Some(Bytes::new()),
        value: Some(Bytes::from_static(b"hello kafka")),
        headers: vec![Header::new("foo", &b"bar"[..])],
    };
    encode_batch(
        &mut buf,
        &[new],
        0,
        ProducerFields::NONE,
        None,
        Compression::None,
    )
    .unwrap();
    assert_eq!(buf, golden.to_vec());
}

#[test]
fn crc_is_castagnoli() {
    assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
}

#[test]
fn varints_match_kafka() {
    for (v, bytes) in [
        (0i64, vec![0x00]),
        (-1, vec![0x01]),
        (1, vec![0x02]),
        (63, vec![0x7e]),
        (-64, vec![0x7f]),
        (64, vec![0x80, 0x01]),
        (i32::MAX as i64, vec![0xfe, 0xff, 0xff, 0xff, 0x0f]),
        (i32::MIN as i64, vec![0xff, 0xff, 0xff, 0xff, 0x0f]),
    ] {
        let mut buf = Vec::new();
        put_varint(&mut buf, v as i32);
        assert_eq!(buf, bytes, "{v}");
        assert_eq!(varint_len(v as i32), bytes.len());
        let mut pos = 0;
        assert_eq!(read_varint(&buf, &mut pos), Ok(v as i32));
        assert_eq!(pos, buf.len());
    }
    for v in [0i64, -1, 1, i64::MAX, i64::MIN, 1 << 40, -(1 << 40)] {
        let mut buf = Vec::new();
        put_varlong(&mut buf, v);
        assert_eq!(varlong_len(v), buf.len());
        let mut pos = 0;
        assert_eq!(read_varlong(&buf, &mut pos), Ok(v));
        assert_eq!(pos, buf.len());
    }
    // Too long, overflowing and truncated varints are refused.
    let mut pos = 0;
    assert!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f], &mut pos).is_err());
    let mut pos = 0;
    assert!(read_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01], &mut pos).is_err());
    let mut pos = 0;
    assert!(read_varint(&[0x80], &mut pos).is_err());
    let mut pos = 0;
    assert!(read_varlong(&[0xff; 10], &mut pos).is_err());
}

#[test]
fn log_append_time_is_every_records_timestamp() {
    let mut buf = Vec::new();
    let records = [record(5, Some(b"a"), Some(b"1")), record(9, None, None)];
    let info = encode_batch(
        &mut buf,
        &records,
        7,
        ProducerFields::NONE,
        Some(1000),
        Compression::None,
    )
    .unwrap();
    assert_eq!(info.max_timestamp, 1000);
    assert_eq!(info.timestamp_type, TimestampType::LogAppendTime);
    let (batch, _) = decode_batch(&Bytes::from(buf)).unwrap();
    assert_eq!(batch.info, info);
    assert!(batch.records.iter().all(|r| r.timestamp == 1000));
    assert_eq!(batch.records[1].offset, 8);
}

#[test]
fn producer_fields_and_flags_round_trip() {
    let producer = ProducerFields {
        producer_id: 42,
        producer_epoch: 3,
        base_sequence: 17,
        transactional: true,
        control: true,
    };
    let mut buf = Vec::new();
    let info = encode_batch(
        &mut buf,
        &[record(1, Some(b"k"), None)],
        0,
        producer,
        None,
        Compression::None,
    )
    .unwrap();
    let header = BatchHeader::parse(&buf).unwrap();
    assert!(header.is_transactional() && header.is_control());
    assert_eq!(header.info(), info);
    assert_eq!(validate_batch(&buf), Ok(header));
}

#[test]
fn empty_batches_are_refused() {
    let mut buf = Vec::new();
    assert_eq!(
        encode_batch(
            &mut buf,
            &[],
            0,
            ProducerFields::NONE,
            None,
            Compression::None
        ),
        Err(EncodeError::Empty)
    );
    assert!(buf.is_empty());
}

#[test]
fn retained_records_keep_offsets_and_sequences() {
    let records: Vec<NewRecord> = (0..5)
        .map(|i| record(100 + i, Some(&[i as u8]), Some(b"v")))
        .collect();
    let producer = ProducerFields {
        producer_id: 9,
        producer_epoch: 1,
        base_sequence: 20,
        transactional: false,
        control: false,
    };
    let mut buf = Vec::new();
    encode_batch(&mut buf, &records, 10, producer, None, Compression::None).unwrap();
    let (batch, _) = decode_batch(&Bytes::from(buf)).unwrap();
    let kept = vec![batch.records[1].clone(), batch.records[3].clone()];
    let mut out = Vec::new();
    let info = encode_retained(&mut out, &batch.info, &kept).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (11, 13));
    assert_eq!(info.base_sequence, 21);
    assert_eq!(info.max_timestamp, 103);
    let (again, used) = decode_batch(&Bytes::from(out.clone())).unwrap();
    assert_eq!(used, out.len());
    assert_eq!(again.records, kept);
    assert_eq!(again.info, info);

    // Offsets out of order or outside the batch are refused.
    let backwards = vec![kept[1].clone(), kept[0].clone()];
    assert!(encode_retained(&mut Vec::new(), &batch.info, &backwards).is_err());
    let mut outside = kept[0].clone();
    outside.offset = 99;
    assert!(encode_retained(&mut Vec::new(), &batch.info, &[outside]).is_err());
}

#[test]
fn records_below_the_requested_offset_are_left_out() {
    let records: Vec<NewRecord> = (0..4).map(|i| record(i, None, Some(b"v"))).collect();
    let mut buf = Vec::new();
    encode_batch(
        &mut buf,
        &records,
        100,
        ProducerFields::NONE,
        None,
        Compression::None,
    )
    .unwrap();
    let buf = Bytes::from(buf);
    let (batch, size) = decode_batch_at(&buf, 0, 102).unwrap();
    assert_eq!(size, buf.len());
    assert_eq!(batch.info.base_offset, 100);
    let offsets: Vec<u64> = batch.records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![102, 103]);
}

#[test]
fn specific_corruptions_get_specific_errors() {
    let mut buf = Vec::new();
    encode_batch(
        &mut buf,
        &[record(1, Some(b"k"), Some(b"v"))],
        0,
        ProducerFields::NONE,
        None,
        Compression::None,
    )
    .unwrap();
    let with = |at: usize, byte: u8| {
        let mut b = buf.clone();
        b[at] = byte;
        decode_batch(&Bytes::from(b)).map(|_| ())
    };
    assert_eq!(with(MAGIC_AT, 1), Err(DecodeError::UnsupportedMagic(1)));
    assert_eq!(
        with(EPOCH_AT + 3, 1),
        Err(DecodeError::PartitionLeaderEpoch(1))
    );
    assert!(matches!(
        with(CRC_AT, buf[CRC_AT] ^ 1),
        Err(DecodeError::Crc { .. })
    ));
    assert!(matches!(with(0, 0x80), Err(DecodeError::Offsets { .. })));
    assert!(matches!(
        decode_batch(&Bytes::copy_from_slice(&buf[..30])),
        Err(DecodeError::Truncated { .. })
    ));
    // With a valid CRC: codecs 5-7 and unknown bits are refused by name, and records
    // that are not gzip under codec 1 do not decompress.
    let with_attributes = |attributes: i16| {
        let mut b = buf.clone();
        b[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
        let crc = crc32c::crc32c(&b[ATTRIBUTES_AT..]);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        (
            decode_batch(&Bytes::from(b.clone())).map(|_| ()),
            validate_batch(&b).map(|_| ()),
        )
    };
    for codec in 5..=7 {
        let err = DecodeError::UnknownCompression(codec);
        assert!(err.to_string().contains(&format!("codec {codec}")), "{err}");
        assert_eq!(with_attributes(codec), (Err(err.clone()), Err(err)));
    }
    let err = DecodeError::Attributes(0x40);
    assert!(err.to_string().contains("unknown bits 0x0040"), "{err}");
    assert_eq!(with_attributes(0x40), (Err(err.clone()), Err(err)));
    let (decoded, validated) = with_attributes(1);
    assert!(
        matches!(
            &decoded,
            Err(DecodeError::Decompress {
                codec: Compression::Gzip,
                ..
            })
        ),
        "{decoded:?}"
    );
    assert_eq!(decoded, validated);
}

/// A few records with keys, nulls, headers and repeated text, so that every codec
/// has something to compress.
fn sample_records(n: usize) -> Vec<NewRecord> {
    (0..n)
        .map(|i| NewRecord {
            timestamp: 1_700_000_000_000 + i as i64 * 7,
            key: (i % 3 != 0).then(|| Bytes::from(format!("key-{}", i % 5))),
            value: (i % 4 != 3).then(|| Bytes::from(format!("value {i} ").repeat(20))),
            headers: if i % 2 == 0 {
                vec![Header::new("trace", format!("t{i}").into_bytes())]
            } else {
                Vec::new()
            },
        })
        .collect()
}

fn assert_same_records(got: &[Record], want: &[NewRecord], base_offset: u64) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.offset, base_offset + i as u64);
        assert_eq!(g.timestamp, w.timestamp);
        assert_eq!(g.key, w.key);
        assert_eq!(g.value, w.value);
        assert_eq!(g.headers, w.headers);
    }
}

/// `batch` with `codec_bits` in its attributes and `records` as its record section, its
/// length and CRC fixed: a batch as another writer could have built it.
fn rebuild(batch: &[u8], codec_bits: i16, records: &[u8]) -> Vec<u8> {
    let mut out = batch[..BATCH_HEADER_LEN].to_vec();
    out.extend_from_slice(records);
    let length = (out.len() - LOG_OVERHEAD) as i32;
    out[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
    let attributes = (get_i16(&out, ATTRIBUTES_AT) & !COMPRESSION_MASK) | codec_bits;
    out[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&out[ATTRIBUTES_AT..]);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

fn encode(records: &[NewRecord], codec: Compression) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_batch(&mut buf, records, 40, ProducerFields::NONE, None, codec).unwrap();
    buf
}

#[test]
fn every_codec_round_trips_through_encode_parse_and_decode() {
    let records = sample_records(30);
    let plain = encode(&records, Compression::None);
    let producer = ProducerFields {
        producer_id: 77,
        producer_epoch: 2,
        base_sequence: 5,
        transactional: true,
        control: false,
    };
    for codec in Compression::ALL {
        let mut buf = vec![0xAA; 3];
        let info = encode_batch(&mut buf, &records, 40, producer, Some(1234), codec).unwrap();
        assert_eq!(info.compression, codec);
        let header = BatchHeader::parse(&buf[3..]).unwrap();
        assert_eq!(header.compression(), codec);
        assert_eq!(header.attributes & COMPRESSION_MASK, codec.id());
        assert!(header.is_transactional());
        assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(header.record_count, 30);
        assert_eq!(header.info(), info);
        if codec != Compression::None {
            assert!(
                header.size() < plain.len() / 2,
                "{codec}: {}",
                header.size()
            );
        }
        assert_eq!(validate_batch(&buf[3..]), Ok(header));

        buf.extend_from_slice(b"next batch");
        let buf = Bytes::from(buf);
        let (batch, used) = decode_batch_at(&buf, 3, 0).unwrap();
        assert_eq!(used, header.size());
        assert_eq!(batch.info, info);
        let mut want = records.clone();
        for r in &mut want {
            r.timestamp = 1234;
        }
        assert_same_records(&batch.records, &want, 40);

        // Records below the requested offset are left out, compressed or not.
        let (tail, _) = decode_batch_at(&buf, 3, 65).unwrap();
        assert_same_records(&tail.records, &want[25..], 65);
    }
}

#[test]
fn batches_encoded_by_kafka_protocol_decode_and_ours_decode_there() {
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression as KpCompression, Record as KpRecord, RecordBatchDecoder, RecordBatchEncoder,
        RecordEncodeOptions, TimestampType as KpTimestampType,
    };

    let records = sample_records(12);
    let kp_records: Vec<KpRecord> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut headers = kafka_protocol::indexmap::IndexMap::new();
            for h in &r.headers {
                headers.insert(StrBytes::from_string(h.key.clone()), h.value.clone());
            }
            KpRecord {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 9,
                producer_epoch: 1,
                timestamp_type: KpTimestampType::Creation,
                offset: 100 + i as i64,
                sequence: 3 + i as i32,
                timestamp: r.timestamp,
                key: r.key.clone(),
                value: r.value.clone(),
                headers,
            }
        })
        .collect();
    let codecs = [
        (KpCompression::None, Compression::None),
        (KpCompression::Gzip, Compression::Gzip),
        (KpCompression::Snappy, Compression::Snappy),
        (KpCompression::Lz4, Compression::Lz4),
        (KpCompression::Zstd, Compression::Zstd),
    ];
    for (kp, ours) in codecs {
        let mut buf = bytes::BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: kp,
        };
        RecordBatchEncoder::encode(&mut buf, &kp_records, &options).unwrap();
        let buf = buf.freeze();
        let header = validate_batch(&buf).unwrap();
        assert_eq!(header.compression(), ours);
        assert_eq!(header.size(), buf.len());
        let (batch, _) = decode_batch(&buf).unwrap();
        assert_eq!(batch.info.base_offset, 100);
        assert_eq!(batch.info.producer_id, 9);
        assert_eq!(batch.info.base_sequence, 3);
        assert_eq!(batch.info.compression, ours);
        assert_same_records(&batch.records, &records, 100);

        // And the other way: kafka-protocol reads what we write.
        let mut ours_buf = Bytes::from(encode(&records, ours));
        let set = RecordBatchDecoder::decode(&mut ours_buf).unwrap();
        assert_eq!(set.compression, kp);
        assert_eq!(set.records.len(), records.len());
        for (got, want) in set.records.iter().zip(&records) {
            assert_eq!(got.key, want.key);
            assert_eq!(got.value, want.value);
            assert_eq!(got.timestamp, want.timestamp);
        }
    }
}

#[test]
fn raw_snappy_as_librdkafka_writes_it_is_read() {
    let records = sample_records(8);
    let plain = encode(&records, Compression::None);
    let raw = snap::raw::Encoder::new()
        .compress_vec(&plain[BATCH_HEADER_LEN..])
        .unwrap();
    let batch = rebuild(&plain, Compression::Snappy.id(), &raw);
    let (decoded, _) = decode_batch(&Bytes::from(batch.clone())).unwrap();
    assert_same_records(&decoded.records, &records, 40);
    assert_eq!(
        validate_batch(&batch).unwrap().compression(),
        Compression::Snappy
    );
}

#[test]
fn gzip_of_several_members_is_read_whole() {
    // Java's GZIPInputStream reads concatenated members; so do we.
    let records = sample_records(6);
    let plain = encode(&records, Compression::None);
    let area = &plain[BATCH_HEADER_LEN..];
    let half = area.len() / 2;
    let mut members = Vec::new();
    for part in [&area[..half], &area[half..]] {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, part).unwrap();
        members.extend(gz.finish().unwrap());
    }
    let batch = rebuild(&plain, Compression::Gzip.id(), &members);
    let (decoded, _) = decode_batch(&Bytes::from(batch)).unwrap();
    assert_same_records(&decoded.records, &records, 40);
}

#[test]
fn damaged_compressed_records_are_errors_not_panics() {
    let records = sample_records(10);
    for codec in &Compression::ALL[1..] {
        let batch = encode(&records, *codec);
        let stream = &batch[BATCH_HEADER_LEN..];
        // A truncated stream, with a CRC that matches it.
        for cut in [0, 1, stream.len() / 2, stream.len() - 1] {
            let bad = rebuild(&batch, codec.id(), &stream[..cut]);
            let decoded = decode_batch(&Bytes::from(bad.clone())).map(|_| ());
            assert!(decoded.is_err(), "{codec} cut to {cut}");
            assert_eq!(
                validate_batch(&bad).map(|_| ()),
                decoded,
                "{codec} cut to {cut}"
            );
        }
        // A damaged stream start (magic or header), with a CRC that matches it.
        let mut damaged = stream.to_vec();
        damaged[0] ^= 0xff;
        let bad = rebuild(&batch, codec.id(), &damaged);
        assert!(
            matches!(
                decode_batch(&Bytes::from(bad.clone())),
                Err(DecodeError::Decompress { codec: c, .. }) if c == *codec
            ),
            "{codec}"
        );
        assert!(validate_batch(&bad).is_err());
        assert!(matches!(
            recompress(&bad, Compression::None),
            Err(EncodeError::Invalid(_))
        ));
        // Any other flipped byte: an error, or records that parse (a codec without a
        // checksum may decode other bytes), never a panic.
        for at in 1..damaged.len() {
            let mut flipped = stream.to_vec();
            flipped[at] ^= 0x21;
            let bad = rebuild(&batch, codec.id(), &flipped);
            let decoded = decode_batch(&Bytes::from(bad.clone()));
            assert_eq!(
                validate_batch(&bad).is_ok(),
                decoded.is_ok(),
                "{codec} byte {at}"
            );
            if let Ok((batch, _)) = decoded {
                assert_eq!(batch.records.len(), records.len());
            }
        }
        // Garbage after the stream: trailing bytes once decompressed, or a bad stream.
        let mut longer = stream.to_vec();
        longer.extend_from_slice(&[0; 9]);
        let bad = rebuild(&batch, codec.id(), &longer);
        if let Ok((batch, _)) = decode_batch(&Bytes::from(bad)) {
            // LZ4 stops at its end mark, as Kafka's reader does.
            assert_eq!(*codec, Compression::Lz4);
            assert_eq!(batch.records.len(), records.len());
        }
    }
}

#[test]
fn decompressed_records_must_match_the_count_and_leave_nothing() {
    let records = sample_records(4);
    let plain = encode(&records, Compression::None);
    let area = &plain[BATCH_HEADER_LEN..];
    let gzip = |bytes: &[u8]| {
        let mut out = Vec::new();
        compression::compress(Compression::Gzip, bytes, &mut out).unwrap();
        out
    };
    // A byte after the last record.
    let mut extra = area.to_vec();
    extra.push(0);
    let bad = rebuild(&plain, Compression::Gzip.id(), &gzip(&extra));
    assert_eq!(validate_batch(&bad), Err(DecodeError::TrailingBytes(1)));
    assert_eq!(
        decode_batch(&Bytes::from(bad)).map(|_| ()),
        Err(DecodeError::TrailingBytes(1))
    );
    // A record short: the count says 4, the stream holds 3.
    let first_three = {
        let mut pos = 0;
        for _ in 0..3 {
            parse_record(area, &mut pos, &mut |_, _| {}).unwrap();
        }
        pos
    };
    let bad = rebuild(&plain, Compression::Gzip.id(), &gzip(&area[..first_three]));
    let missing = DecodeError::MissingRecords { count: 4, found: 3 };
    assert_eq!(validate_batch(&bad), Err(missing.clone()));
    assert_eq!(decode_batch(&Bytes::from(bad)).map(|_| ()), Err(missing));
    // A count far above what the decompressed bytes hold is refused before decoding.
    let mut huge = rebuild(&plain, Compression::Gzip.id(), &gzip(area));
    huge[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&1_000_000i32.to_be_bytes());
    huge[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
        .copy_from_slice(&2_000_000i32.to_be_bytes());
    let crc = crc32c::crc32c(&huge[ATTRIBUTES_AT..]);
    huge[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        decode_batch(&Bytes::from(huge)),
        Err(DecodeError::RecordCount {
            count: 1_000_000,
            ..
        })
    ));
}

#[test]
fn a_zip_bomb_is_refused_at_the_limit() {
    let records = sample_records(1);
    let plain = encode(&records, Compression::None);
    // 65 MiB of zeros: gzip as 65 members of 1 MiB each (MultiGzDecoder reads them all),
    // and zstd in one frame.
    let mut member = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut member, &vec![0u8; 1 << 20]).unwrap();
    let member = member.finish().unwrap();
    let gzip_bomb: Vec<u8> = member
        .iter()
        .copied()
        .cycle()
        .take(member.len() * 65)
        .collect();
    let zstd_bomb = zstd::bulk::compress(&vec![0u8; 65 << 20], 1).unwrap();
    for (codec, bomb) in [
        (Compression::Gzip, gzip_bomb),
        (Compression::Zstd, zstd_bomb),
    ] {
        assert!(bomb.len() < 1 << 20, "{codec}: {}", bomb.len());
        let batch = rebuild(&plain, codec.id(), &bomb);
        let want = DecodeError::DecompressedTooLarge {
            codec,
            limit: MIN_DECOMPRESSED_LIMIT,
        };
        assert_eq!(validate_batch(&batch), Err(want.clone()));
        assert_eq!(
            decode_batch(&Bytes::from(batch.clone())).map(|_| ()),
            Err(want)
        );
        assert!(matches!(
            recompress(&batch, Compression::None),
            Err(EncodeError::Invalid(
                DecodeError::DecompressedTooLarge { .. }
            ))
        ));
    }
    assert_eq!(max_decompressed_len(100), MIN_DECOMPRESSED_LIMIT);
    assert_eq!(max_decompressed_len(32 << 20), 128 << 20);
}

#[test]
fn the_encoder_refuses_records_that_would_decompress_past_the_limit() {
    // 70 MiB of one byte compresses to far less than a quarter of itself.
    let big = NewRecord {
        timestamp: 1,
        key: None,
        value: Some(Bytes::from(vec![7u8; 70 << 20])),
        headers: Vec::new(),
    };
    let mut buf = b"keep".to_vec();
    let err = encode_batch(
        &mut buf,
        std::slice::from_ref(&big),
        0,
        ProducerFields::NONE,
        None,
        Compression::Zstd,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            EncodeError::Inflates {
                codec: Compression::Zstd,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(buf, b"keep");
}

#[test]
fn recompress_changes_only_the_codec_length_and_crc() {
    let records = sample_records(20);
    let producer = ProducerFields {
        producer_id: 5,
        producer_epoch: 3,
        base_sequence: 1000,
        transactional: true,
        control: false,
    };
    for from in Compression::ALL {
        let mut original = Vec::new();
        encode_batch(&mut original, &records, 900, producer, Some(77), from).unwrap();
        let before = validate_batch(&original).unwrap();
        for to in Compression::ALL {
            let out = recompress(&original, to).unwrap();
            let after = validate_batch(&out).unwrap();
            assert_eq!(after.compression(), to, "{from} -> {to}");
            assert_eq!(after.size(), out.len());
            assert_eq!(
                after.attributes & !COMPRESSION_MASK,
                before.attributes & !COMPRESSION_MASK
            );
            // Every field but the length, the codec bits and the CRC is the same.
            let same = |h: &BatchHeader| {
                (
                    h.base_offset,
                    h.last_offset_delta,
                    h.base_timestamp,
                    h.max_timestamp,
                    h.producer_id,
                    h.producer_epoch,
                    h.base_sequence,
                    h.record_count,
                )
            };
            assert_eq!(same(&after), same(&before));
            assert_eq!(out[EPOCH_AT..CRC_AT], original[EPOCH_AT..CRC_AT]);
            let (a, _) = decode_batch(&Bytes::from(out.clone())).unwrap();
            let (b, _) = decode_batch(&Bytes::from(original.clone())).unwrap();
            assert_eq!(a.records, b.records);
            assert_eq!(
                a.info,
                BatchInfo {
                    compression: to,
                    ..b.info
                }
            );
            if to == from {
                assert_eq!(out, original);
            }
        }
    }
    // Only the first batch of the buffer is rewritten.
    let mut two = encode(&records, Compression::None);
    let one_len = two.len();
    two.extend_from_slice(&encode(&records, Compression::None));
    let out = recompress(&two, Compression::None).unwrap();
    assert_eq!(out.len(), one_len);
    assert!(matches!(
        recompress(&two[..30], Compression::Gzip),
        Err(EncodeError::Invalid(DecodeError::Truncated { .. }))
    ));
}

#[test]
fn retained_records_keep_the_batchs_codec() {
    let records = sample_records(10);
    for codec in Compression::ALL {
        let (batch, _) = decode_batch(&Bytes::from(encode(&records, codec))).unwrap();
        let kept: Vec<Record> = batch.records.iter().skip(2).step_by(3).cloned().collect();
        let mut out = Vec::new();
        let info = encode_retained(&mut out, &batch.info, &kept).unwrap();
        assert_eq!(info.compression, codec);
        assert_eq!(BatchHeader::parse(&out).unwrap().compression(), codec);
        let (again, _) = decode_batch(&Bytes::from(out)).unwrap();
        assert_eq!(again.records, kept);
    }
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Option<Bytes>> {
    prop::option::of(prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from))
}

fn arb_header() -> impl Strategy<Value = Header> {
    (".{0,8}", arb_bytes(16)).prop_map(|(key, value)| Header { key, value })
}

fn arb_record() -> impl Strategy<Value = NewRecord> {
    (
        any::<i64>(),
        arb_bytes(40),
        arb_bytes(300),
        prop::collection::vec(arb_header(), 0..3),
    )
        .prop_map(|(timestamp, key, value, headers)| NewRecord {
            timestamp,
            key,
            value,
            headers,
        })
}

fn arb_producer() -> impl Strategy<Value = ProducerFields> {
    (
        any::<i64>(),
        any::<i16>(),
        any::<i32>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(producer_id, producer_epoch, base_sequence, transactional, control)| ProducerFields {
                producer_id,
                producer_epoch,
                base_sequence,
                transactional,
                control,
            },
        )
}

proptest! {
    #[test]
    fn round_trips_and_consumes_exactly_what_was_written(
        codec in prop::sample::select(Compression::ALL.to_vec()),
        records in prop::collection::vec(arb_record(), 1..12),
        base_offset in 0u64..(1 << 62),
        producer in arb_producer(),
        append_time in prop::option::of(any::<i64>()),
        prefix in prop::collection::vec(any::<u8>(), 0..8),
        suffix in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut buf = prefix.clone();
        let info = encode_batch(&mut buf, &records, base_offset, producer, append_time, codec).unwrap();
        prop_assert_eq!(info.compression, codec);
        let written = buf.len() - prefix.len();
        buf.extend_from_slice(&suffix);
        let buf = Bytes::from(buf);

        let (batch, used) = decode_batch_at(&buf, prefix.len(), 0).unwrap();
        prop_assert_eq!(used, written);
        prop_assert_eq!(batch.info, info);
        prop_assert_eq!(info.base_offset, base_offset);
        prop_assert_eq!(info.last_offset, base_offset + records.len() as u64 - 1);
        prop_assert_eq!(batch.records.len(), records.len());
        for (i, (got, want)) in batch.records.iter().zip(&records).enumerate() {
            prop_assert_eq!(got.offset, base_offset + i as u64);
            prop_assert_eq!(got.timestamp, append_time.unwrap_or(want.timestamp));
            prop_assert_eq!(&got.key, &want.key);
            prop_assert_eq!(&got.value, &want.value);
            prop_assert_eq!(&got.headers, &want.headers);
        }
        if append_time.is_none() {
            let max = records.iter().map(|r| r.timestamp).max().unwrap();
            prop_assert_eq!(info.max_timestamp, max);
        }
        let header = validate_batch(&buf[prefix.len()..]).unwrap();
        prop_assert_eq!(header.size(), written);
        prop_assert_eq!(header.info(), info);

        // Recompressing to another codec and back keeps the records.
        let other = Compression::ALL[(codec.id() as usize + 1) % Compression::ALL.len()];
        let moved = recompress(&buf[prefix.len()..], other).unwrap();
        let back = recompress(&moved, codec).unwrap();
        let (again, _) = decode_batch(&Bytes::from(back)).unwrap();
        prop_assert_eq!(again.records, batch.records);
    }

    #[test]
    fn any_flipped_byte_or_truncation_is_rejected(
        codec in prop::sample::select(Compression::ALL.to_vec()),
        records in prop::collection::vec(arb_record(), 1..4),
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        cut in any::<prop::sample::Index>(),
    ) {
        let mut buf = Vec::new();
        encode_batch(&mut buf, &records, 1000, ProducerFields::NONE, None, codec).unwrap();

        let at = position.index(buf.len());
        let mut flipped = buf.clone();
        flipped[at] ^= flip;
        let flipped = Bytes::from(flipped);
        match decode_batch(&flipped) {
            // The base offset is outside the CRC (as in Kafka); a changed one is caught by
            // the log, which knows which offset comes next.
            Ok((batch, _)) => prop_assert!(at < 8 && batch.info.base_offset != 1000),
            Err(_) => prop_assert!(validate_batch(&flipped).is_err()),
        }

        let len = cut.index(buf.len());
        let cut = Bytes::copy_from_slice(&buf[..len]);
        prop_assert!(
            matches!(decode_batch(&cut), Err(DecodeError::Truncated { .. })),
            "truncated to {} of {} bytes", len, buf.len()
        );
        prop_assert!(validate_batch(&cut).is_err());
    }
}
