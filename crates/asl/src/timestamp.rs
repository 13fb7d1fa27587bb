//! RFC 3339 timestamps as Step Functions reads them (Choice `Timestamp*` rules, Wait
//! `Timestamp`) and writes them (`$$.State.EnteredTime`, `$$.Execution.StartTime`).
//!
//! Step Functions accepts `YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm)` with an uppercase `T` and
//! `Z`; anything else is not a timestamp (a Choice comparison with it is false).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch (negative before it).
pub(crate) type Nanos = i128;

/// Parses an RFC 3339 timestamp; `None` if `text` is not one.
pub(crate) fn parse(text: &str) -> Option<Nanos> {
    let b = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let s = b.get(from..from + len)?;
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    let year = digits(0, 4)?;
    let month = digits(5, 2)?;
    let day = digits(8, 2)?;
    let hour = digits(11, 2)?;
    let minute = digits(14, 2)?;
    let second = digits(17, 2)?;
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || b.get(10) != Some(&b'T')
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: i128 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let frac = &text[start..i];
        if frac.is_empty() || frac.len() > 9 {
            return None;
        }
        nanos = frac.parse::<i128>().ok()? * 10i128.pow(9 - frac.len() as u32);
    }
    let offset_seconds: i64 = match b.get(i) {
        Some(b'Z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b.get(i + 3) == Some(&b':') => {
            let oh = digits(i + 1, 2)?;
            let om = digits(i + 4, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(i128::from(seconds) * 1_000_000_000 + nanos)
}

/// Formats a time as Step Functions does in the context object: `2024-05-01T12:00:00.123Z`.
pub(crate) fn format(time: SystemTime) -> String {
    let (seconds, millis) = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_millis(),
        ),
        Err(e) => {
            // Before 1970: only reachable with a skewed clock; round down to whole seconds.
            let d = e.duration();
            (-i64::try_from(d.as_secs()).unwrap_or(i64::MAX) - 1, 0)
        }
    };
    let days = seconds.div_euclid(86_400);
    let rem = seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// How long from `now` until `target` (zero if it has passed).
pub(crate) fn until(target: Nanos, now: SystemTime) -> Duration {
    let now = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(_) => 0,
    };
    let delta = target - now;
    if delta <= 0 {
        Duration::ZERO
    } else {
        let secs = u64::try_from(delta / 1_000_000_000).unwrap_or(u64::MAX);
        // The remainder is below 10^9, so it fits.
        let sub = u32::try_from(delta % 1_000_000_000).unwrap_or(0);
        Duration::new(secs, sub)
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian calendar).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The UTC calendar date (year, month, day) of day `z` counted from 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_with_zone_and_fraction() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse("1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
        assert_eq!(parse("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(
            parse("2016-03-14T01:59:00Z"),
            Some(1_457_920_740 * 1_000_000_000)
        );
        assert!(parse("2024-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn rejects_what_step_functions_rejects() {
        for bad in [
            "2016-03-14t01:59:00Z",
            "2016-03-14T01:59:00",
            "2016-03-14 01:59:00Z",
            "2023-02-29T00:00:00Z",
            "2016-13-14T01:59:00Z",
            "2016-03-14T01:59:00z",
            "2016-03-14T01:59:00.Z",
            "x",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_with_milliseconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_457_920_740_123);
        assert_eq!(format(t), "2016-03-14T01:59:00.123Z");
        assert_eq!(parse(&format(t)), Some(1_457_920_740_123_000_000));
    }
}
