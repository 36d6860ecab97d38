//! RFC 3339 timestamps as Graph writes them, to UTC microseconds.
//!
//! The common shape (`2021-03-17T06:47:05.123Z`, 0 to 9 fraction digits, `Z` or `±hh:mm`) is
//! read directly; anything else goes through chrono's RFC 3339 parser. Digits past the
//! sixth are dropped (the exact text stays in `raw_json`).

use chrono::DateTime;

pub(crate) const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The instants a timestamp column holds: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z
/// in UTC, the range Spark, Hive and Trino timestamps and `date=YYYY-MM-DD` folders share.
/// `9999-12-31T23:59:59-01:00` is valid RFC 3339 but falls in year 10000 in UTC.
const FIRST_MICROS: i64 = -62_135_596_800_000_000;
const LAST_MICROS: i64 = 253_402_300_799_999_999;

/// Parses an RFC 3339 timestamp to microseconds since the Unix epoch, UTC.
pub(crate) fn parse_micros(s: &str) -> Result<i64, &'static str> {
    let micros = match fast(s.as_bytes()) {
        Some(v) => v,
        None => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => t.timestamp_micros(),
            Err(_) => {
                return Err("not an RFC 3339 timestamp (expected e.g. 2021-03-17T06:47:05.123Z)");
            }
        },
    };
    if !(FIRST_MICROS..=LAST_MICROS).contains(&micros) {
        return Err("outside years 0001 to 9999 in UTC");
    }
    Ok(micros)
}

/// UTC day (days since 1970-01-01) of a microsecond timestamp.
pub(crate) fn day_of(micros: i64) -> i32 {
    micros.div_euclid(MICROS_PER_DAY) as i32
}

/// Parses an `Edm.Date` (`2021-03-17`) to days since the Unix epoch.
pub(crate) fn parse_date(s: &str) -> Result<i32, &'static str> {
    let b = s.as_bytes();
    let bad = "not a date (expected e.g. 2021-03-17)";
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad);
    }
    let (y, m, d) = (
        digits(&b[0..4]).ok_or(bad)?,
        digits(&b[5..7]).ok_or(bad)?,
        digits(&b[8..10]).ok_or(bad)?,
    );
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(bad);
    }
    Ok(days_from_civil(y, m, d) as i32)
}

#[inline]
fn digits(b: &[u8]) -> Option<i64> {
    let mut v = 0i64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(v)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[inline]
fn fast(b: &[u8]) -> Option<i64> {
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (h, mi, s) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + (b[i] - b'0') as i64;
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 9 {
            return None;
        }
        for _ in n..6 {
            micros *= 10;
        }
    }
    let offset_secs = match &b[i..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = digits(&[*h1, *h2])?;
            let om = digits(&[*m1, *m2])?;
            if oh > 23 || om > 59 {
                return None;
            }
            let v = oh * 3600 + om * 60;
            if *sign == b'-' { -v } else { v }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_secs;
    Some(secs * 1_000_000 + micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono_micros(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros()
    }

    #[test]
    fn reads_graph_shapes_like_chrono() {
        for s in [
            "2021-03-17T06:47:05Z",
            "2021-03-17T06:47:05.1Z",
            "2021-03-17T06:47:05.12Z",
            "2021-03-17T06:47:05.123Z",
            "2021-02-02T10:30:34.9097561-08:00",
            "2024-02-29T23:59:59.999999+05:30",
            "0001-01-01T00:00:00Z",
            "1969-12-31T23:59:59.5Z",
        ] {
            assert_eq!(parse_micros(s).unwrap(), chrono_micros(s), "{s}");
        }
        assert_eq!(
            parse_micros("2021-03-17T06:47:05.1234567Z").unwrap(),
            1615963625123456
        );
    }

    #[test]
    fn refuses_malformed() {
        for s in [
            "2021-03-1706:47:05.123Z",
            "string (timestamp)",
            "datetime-value",
            "2021-02-30T00:00:00Z",
            "",
        ] {
            assert!(parse_micros(s).is_err(), "{s}");
        }
    }

    #[test]
    fn instants_outside_years_1_to_9999_in_utc_are_refused() {
        for s in [
            "9999-12-31T23:59:59-01:00",
            "9999-12-31T23:59:59.5-00:01",
            "0001-01-01T00:00:00+00:01",
            "0000-06-01T00:00:00Z",
        ] {
            assert!(parse_micros(s).is_err(), "{s}");
        }
        assert_eq!(parse_micros("0001-01-01T00:00:00Z"), Ok(FIRST_MICROS));
        assert_eq!(parse_micros("9999-12-31T23:59:59.999999Z"), Ok(LAST_MICROS));
        assert_eq!(
            parse_micros("9999-12-31T23:59:59.999999+01:00"),
            Ok(LAST_MICROS - 3_600_000_000)
        );
    }

    #[test]
    fn days() {
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(0), 0);
        assert_eq!(parse_date("1970-01-02"), Ok(1));
        assert!(parse_date("1970-13-02").is_err());
    }
}
