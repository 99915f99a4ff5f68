//! The ISO 8601 date-times and durations that `kafka-consumer-groups --reset-offsets` takes
//! with `--to-datetime` and `--by-duration`.

use std::time::Duration;

use chrono::{FixedOffset, NaiveDateTime, TimeZone as _};

/// What `--to-datetime` accepts, for error messages.
pub(crate) const DATETIME_FORMAT: &str =
    "YYYY-MM-DDTHH:mm:SS.sss with an optional zone (Z, +02:00, +0200 or +02; none means UTC), \
     e.g. 2024-05-01T09:30:00.000Z";

/// What `--by-duration` accepts, for error messages.
pub(crate) const DURATION_FORMAT: &str =
    "an ISO 8601 duration PnDTnHnMnS, e.g. PT1H30M, P1DT2H or PT0.5S";

/// Parses a date and time as Kafka's `Utils.getDateTime` does, into epoch milliseconds:
/// `YYYY-MM-DDTHH:mm:SS.sss` followed by an optional zone, `Z` or an offset `+HH:MM`, `+HHMM`
/// or `+HH` (or `-`). A value without a zone is UTC, as in Kafka (which appends `Z`).
///
/// Kafka requires exactly three digits of fraction; here the fraction may also be left out
/// or have up to nine digits (cut to milliseconds), which Kafka rejects, so every value Kafka
/// accepts means the same instant here.
pub(crate) fn parse_datetime(text: &str) -> Result<i64, String> {
    let bad = |why: &str| format!("{why}; expected {DATETIME_FORMAT}");
    let Some((_, time)) = text.split_once('T') else {
        return Err(bad("no 'T' between the date and the time"));
    };
    let (local, offset_seconds) = if let Some(local) = text.strip_suffix('Z') {
        (local, 0)
    } else if let Some(at) = time.rfind(['+', '-']) {
        let zone_at = text.len() - time.len() + at;
        let offset = parse_offset(&text[zone_at..]).ok_or_else(|| {
            bad(&format!(
                "the zone {:?} is not Z, +HH:MM, +HHMM or +HH",
                &text[zone_at..]
            ))
        })?;
        (&text[..zone_at], offset)
    } else {
        (text, 0)
    };
    let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M:%S%.f")
        .map_err(|e| bad(&format!("not a valid date and time ({e})")))?;
    let zone = FixedOffset::east_opt(offset_seconds).ok_or_else(|| bad("the zone is too far"))?;
    let instant = zone
        .from_local_datetime(&naive)
        .single()
        .ok_or_else(|| bad("not a valid date and time"))?;
    Ok(instant.timestamp_millis())
}

/// `+HH:MM`, `+HHMM` or `+HH` (or with `-`) as seconds east of UTC.
fn parse_offset(zone: &str) -> Option<i32> {
    let (sign, digits) = match zone.as_bytes().first()? {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => return None,
    };
    if !digits.bytes().all(|b| b.is_ascii_digit() || b == b':') {
        return None;
    }
    let (hours, minutes) = match digits.len() {
        2 => (digits, "00"),
        4 => digits.split_at(2),
        5 if digits.as_bytes()[2] == b':' => (&digits[..2], &digits[3..]),
        _ => return None,
    };
    let number = |s: &str| -> Option<i32> {
        if s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let (hours, minutes) = (number(hours)?, number(minutes)?);
    (hours <= 18 && minutes < 60).then_some(sign * (hours * 3600 + minutes * 60))
}

/// Parses an ISO 8601 duration as Kafka's `--by-duration` takes it (Java's
/// `Duration.parse`): `PnDTnHnMnS`, letters in either case, each part optional but at least
/// one present, the time parts in the order H, M, S, a fraction on the seconds only (cut to
/// milliseconds). Unlike Java, a sign is refused: `--by-duration` goes back in time.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("{why}; expected {DURATION_FORMAT}");
    if text.contains(['-', '+']) {
        return Err(bad(
            "a sign is not allowed (the offsets go back from now by the duration)",
        ));
    }
    let upper = text.to_ascii_uppercase();
    let Some(rest) = upper.strip_prefix('P') else {
        return Err(bad("it does not start with P"));
    };
    let (days, time) = match rest.split_once('T') {
        Some((_, "")) => return Err(bad("nothing after T")),
        Some((days, time)) => (days, time),
        None => (rest, ""),
    };
    if days.is_empty() && time.is_empty() {
        return Err(bad("it has no part"));
    }
    let mut millis: u128 = 0;
    if !days.is_empty() {
        let n = days
            .strip_suffix('D')
            .and_then(whole_number)
            .ok_or_else(|| bad(&format!("{days:?} before T is not nD")))?;
        millis = n.saturating_mul(86_400_000);
    }
    let units = [('H', 3_600_000u128), ('M', 60_000), ('S', 1_000)];
    let mut next_unit = 0;
    let mut rest = time;
    while !rest.is_empty() {
        let Some(at) = rest.find(|c: char| c.is_ascii_alphabetic()) else {
            return Err(bad(&format!("{rest:?} has no unit")));
        };
        let number = &rest[..at];
        let unit = char::from(rest.as_bytes()[at]);
        rest = &rest[at + 1..];
        let Some(index) = units.iter().position(|(u, _)| *u == unit) else {
            return Err(bad(&format!("{unit} after T is not H, M or S")));
        };
        if index < next_unit {
            return Err(bad(&format!(
                "{unit} is out of order or repeated (H, M, S in this order, each once)"
            )));
        }
        next_unit = index + 1;
        let value = if unit == 'S' {
            seconds_millis(number)
        } else {
            whole_number(number).map(|n| n.saturating_mul(units[index].1))
        };
        let value =
            value.ok_or_else(|| bad(&format!("{number:?} before {unit} is not a number")))?;
        millis = millis.saturating_add(value);
    }
    let millis = u64::try_from(millis)
        .ok()
        .filter(|&ms| i64::try_from(ms).is_ok())
        .ok_or_else(|| bad("it is too long"))?;
    Ok(Duration::from_millis(millis))
}

/// ASCII digits as a number; one too large for a `u128` is `u128::MAX` (too long anyway).
fn whole_number(text: &str) -> Option<u128> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u128::MAX))
}

/// Seconds with an optional fraction (`.` or `,`, one to nine digits), in milliseconds.
fn seconds_millis(text: &str) -> Option<u128> {
    let (whole, fraction) = match text.split_once(['.', ',']) {
        Some((_, "")) => return None,
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    let whole = whole_number(whole)?;
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let millis_digits = format!("{fraction:0<3}");
    let fraction_millis: u128 = millis_digits[..3].parse().ok()?;
    Some(whole.saturating_mul(1000).saturating_add(fraction_millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-05-01T10:00:00Z.
    const BASE: i64 = 1_714_557_600_000;

    #[test]
    fn datetimes_in_kafkas_format() {
        for (text, want) in [
            ("2024-05-01T10:00:00.000Z", BASE),
            ("2024-05-01T10:00:00.000", BASE),
            ("2024-05-01T12:00:00.000+02:00", BASE),
            ("2024-05-01T12:00:00.000+0200", BASE),
            ("2024-05-01T12:00:00.000+02", BASE),
            ("2024-05-01T04:30:00.000-05:30", BASE),
            ("2024-05-01T10:00:00.250Z", BASE + 250),
            ("1970-01-01T00:00:00.000Z", 0),
            ("1969-12-31T23:59:59.999Z", -1),
        ] {
            assert_eq!(parse_datetime(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn datetimes_may_leave_out_or_lengthen_the_fraction() {
        for (text, want) in [
            ("2024-05-01T10:00:00Z", BASE),
            ("2024-05-01T10:00:00", BASE),
            ("2024-05-01T12:00:00+02:00", BASE),
            ("2024-05-01T10:00:00.5Z", BASE + 500),
            ("2024-05-01T10:00:00.123456789Z", BASE + 123),
        ] {
            assert_eq!(parse_datetime(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_datetimes_say_what_is_wrong_and_what_is_expected() {
        for (text, why) in [
            (
                "2024-05-01 10:00:00.000",
                "no 'T' between the date and the time",
            ),
            ("", "no 'T'"),
            ("yesterday", "no 'T'"),
            ("2024-13-01T10:00:00.000Z", "not a valid date and time"),
            ("2024-02-30T10:00:00.000Z", "not a valid date and time"),
            ("2024-05-01T24:00:00.000Z", "not a valid date and time"),
            ("2024-05-01T10:00.000Z", "not a valid date and time"),
            ("2024-05-01T10:00:00.000 Z", "not a valid date and time"),
            ("2024-05-01T10:00:00.000+2", "the zone \"+2\" is not"),
            ("2024-05-01T10:00:00.000+02:0", "the zone \"+02:0\" is not"),
            (
                "2024-05-01T10:00:00.000+25:00",
                "the zone \"+25:00\" is not",
            ),
            ("2024-05-01T10:00:00.000+ab", "the zone \"+ab\" is not"),
            ("2024-05-01T10:00:00.000EST", "not a valid date and time"),
            ("2024-05-01", "no 'T'"),
            ("2024-05-01T", "not a valid date and time"),
            (
                "2024-05-01T10:00:00.000+a\u{e9}b",
                "the zone \"+a\u{e9}b\" is not",
            ),
            (
                "2024-05-01T10:00:00.000-\u{e9}\u{e9}",
                "the zone \"-\u{e9}\u{e9}\" is not",
            ),
            (
                "2024-05-01T10:00:00.000+1\u{e9}:",
                "the zone \"+1\u{e9}:\" is not",
            ),
            ("\u{e9}T\u{e9}", "not a valid date and time"),
        ] {
            let err = match parse_datetime(text) {
                Ok(ms) => panic!("{text:?} parsed as {ms}"),
                Err(e) => e,
            };
            assert!(err.starts_with(why), "{text:?}: {err}");
            assert!(err.ends_with(DATETIME_FORMAT), "{text:?}: {err}");
        }
    }

    fn ms(text: &str) -> Result<u128, String> {
        parse_duration(text).map(|d| d.as_millis())
    }

    #[test]
    fn durations_in_kafkas_format() {
        for (text, want) in [
            ("PT1H30M", 90 * 60_000),
            ("P1DT2H", 26 * 3_600_000),
            ("P1D", 86_400_000),
            ("PT0S", 0),
            ("PT15M", 15 * 60_000),
            ("PT1.5S", 1_500),
            ("PT0,25S", 250),
            ("PT0.0001S", 0),
            ("pt2h", 7_200_000),
            (
                "P2DT3H4M5.006S",
                ((2 * 24 + 3) * 3600 + 4 * 60 + 5) * 1000 + 6,
            ),
            ("PT36H", 36 * 3_600_000),
            ("PT90M", 90 * 60_000),
            ("PT100000S", 100_000_000),
        ] {
            assert_eq!(ms(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_durations_say_what_is_wrong_and_what_is_expected() {
        for (text, why) in [
            ("", "it does not start with P"),
            ("1H", "it does not start with P"),
            ("90m", "it does not start with P"),
            ("P", "it has no part"),
            ("PT", "nothing after T"),
            ("P1DT", "nothing after T"),
            ("P1H", "\"1H\" before T is not nD"),
            ("P1W", "\"1W\" before T is not nD"),
            ("P1Y", "\"1Y\" before T is not nD"),
            ("PD", "\"D\" before T is not nD"),
            ("P1.5D", "\"1.5D\" before T is not nD"),
            ("PT1D", "D after T is not H, M or S"),
            ("PT5", "\"5\" has no unit"),
            ("PT1H5", "\"5\" has no unit"),
            ("PT30M1H", "H is out of order or repeated"),
            ("PT1H1H", "H is out of order or repeated"),
            ("PT1S1M", "M is out of order or repeated"),
            ("PTH", "\"\" before H is not a number"),
            ("PT1.5H", "\"1.5\" before H is not a number"),
            ("PT1.S", "\"1.\" before S is not a number"),
            ("PT.5S", "\".5\" before S is not a number"),
            (
                "PT1.0000000001S",
                "\"1.0000000001\" before S is not a number",
            ),
            ("PT1 H", "\"1 \" before H is not a number"),
            ("PT1\u{e9}H", "\"1\u{e9}\" before H is not a number"),
            ("PT1.\u{e9}S", "\"1.\u{e9}\" before S is not a number"),
            ("P\u{e9}D", "\"\u{e9}D\" before T is not nD"),
            ("PT-1H", "a sign is not allowed"),
            ("-PT1H", "a sign is not allowed"),
            ("P+1D", "a sign is not allowed"),
            ("P99999999999999999999D", "it is too long"),
            (
                "P9999999999999999999999999999999999999999999D",
                "it is too long",
            ),
            (
                "PT9999999999999999999999999999999999999999999.5S",
                "it is too long",
            ),
        ] {
            let err = match ms(text) {
                Ok(ms) => panic!("{text:?} parsed as {ms} ms"),
                Err(e) => e,
            };
            assert!(err.starts_with(why), "{text:?}: {err}");
            assert!(err.ends_with(DURATION_FORMAT), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_longest_duration_fits_an_i64_of_milliseconds() {
        let days = i64::MAX / 86_400_000;
        let d = parse_duration(&format!("P{days}D")).unwrap();
        assert!(i64::try_from(d.as_millis()).is_ok());
        assert!(parse_duration(&format!("P{}D", days + 1)).is_err());
    }
}
