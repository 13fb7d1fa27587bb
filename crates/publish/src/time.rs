//! UTC timestamps as the platforms write them: RFC 3339 (`publishAt`), HTTP dates
//! (`Retry-After`), and the next midnight in US Pacific time, when YouTube's daily quota resets.
//!
//! Pure arithmetic on Unix seconds; no clock is read here (callers pass `now`).

/// Seconds in a day.
pub const DAY: u64 = 86_400;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Formats Unix seconds as RFC 3339 UTC: `2026-12-24T18:00:00Z`.
pub fn format_rfc3339(unix: u64) -> String {
    let secs = unix % DAY;
    let (y, m, d) = civil_from_days((unix / DAY) as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Parses an RFC 3339 date-time (`2026-12-24T18:00:00Z`, `2026-12-24T10:00:00.5-08:00`;
/// `t`/`z` and a space separator accepted) into Unix seconds, fractions dropped. `None` for
/// anything else, including times before 1970.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.trim().as_bytes();
    if b.len() < 20 || !b.is_ascii() {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let y = i64::from(y);
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) {
        return None;
    }
    // 60 is a leap second; it is read as the following second.
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset: i64 = match &b[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = i64::from(oh * 3600 + om * 60);
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let t = days_from_civil(y, mo, d) * DAY as i64 + i64::from(h * 3600 + mi * 60 + sec) - offset;
    u64::try_from(t).ok()
}

/// Parses an HTTP date in its preferred form (IMF-fixdate, RFC 9110 §5.6.7:
/// `Sun, 06 Nov 1994 08:49:37 GMT`), as `Retry-After` may carry one.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let s = s.trim();
    let mut parts = s.split_ascii_whitespace();
    let _weekday = parts.next()?.strip_suffix(',')?;
    let d: u32 = parts.next().filter(|p| p.len() == 2)?.parse().ok()?;
    let mo = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let y: u32 = parts.next().filter(|p| p.len() == 4)?.parse().ok()?;
    let clock = parts.next()?;
    if parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    // Same fields as RFC 3339 from here on.
    parse_rfc3339(&format!("{y:04}-{mo:02}-{d:02}T{clock}Z"))
}

/// Unix seconds of the US daylight-saving-time switches in a year, under the rules in force
/// since 2007 (Energy Policy Act of 2005): DST begins the second Sunday of March at 02:00
/// standard time and ends the first Sunday of November at 02:00 daylight time. Earlier rules
/// are not modelled: only future times matter here.
fn pacific_dst(year: i64) -> (u64, u64) {
    let (start, end) = dst_dates(year);
    // 02:00 PST is 10:00 UTC; 02:00 PDT is 09:00 UTC.
    let at = |day: i64, utc_hour: i64| (day * DAY as i64 + utc_hour * 3600).max(0) as u64;
    (at(start, 10), at(end, 9))
}

/// Day numbers (since 1970-01-01) of the second Sunday of March and the first Sunday of
/// November.
fn dst_dates(year: i64) -> (i64, i64) {
    // 1970-01-01 was a Thursday; (days + 4) mod 7 is 0 on Sundays.
    let first_sunday = |m: u32| {
        let first = days_from_civil(year, m, 1);
        first + (7 - (first + 4).rem_euclid(7)) % 7
    };
    (first_sunday(3) + 7, first_sunday(11))
}

/// Pacific time's offset from UTC at a Unix time, in seconds (-7 h in daylight time, -8 h
/// otherwise).
fn pacific_offset(unix: u64) -> i64 {
    let (y, _, _) = civil_from_days((unix / DAY) as i64);
    let (start, end) = pacific_dst(y);
    if (start..end).contains(&unix) {
        -7 * 3600
    } else {
        -8 * 3600
    }
}

/// The first midnight in US Pacific time (America/Los_Angeles) strictly after `unix`, in Unix
/// seconds: when YouTube's daily quota resets. It is 08:00 UTC in winter and 07:00 UTC in
/// summer; the switches happen at 02:00 local, so no midnight is ever skipped or repeated.
pub fn next_pacific_midnight(unix: u64) -> u64 {
    let local = unix as i64 + pacific_offset(unix);
    let tomorrow = local.div_euclid(DAY as i64) + 1;
    // Daylight time is in force at 00:00 on a day after the March switch day up to and
    // including the November switch day (it ends at 02:00 that morning).
    let (y, _, _) = civil_from_days(tomorrow);
    let (start, end) = dst_dates(y);
    let offset = if tomorrow > start && tomorrow <= end {
        -7 * 3600
    } else {
        -8 * 3600
    };
    (tomorrow * DAY as i64 - offset) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_and_accepts_offsets() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        let t = parse_rfc3339("2026-12-24T18:00:00Z").unwrap();
        assert_eq!(format_rfc3339(t), "2026-12-24T18:00:00Z");
        assert_eq!(parse_rfc3339("2026-12-24T10:00:00-08:00"), Some(t));
        assert_eq!(parse_rfc3339("2026-12-24T19:30:00.250+01:30"), Some(t));
        assert_eq!(parse_rfc3339("2026-12-24t18:00:00z"), Some(t));
        for t in [0, 1, 86_399, 1_709_251_199, 4_102_444_800] {
            assert_eq!(parse_rfc3339(&format_rfc3339(t)), Some(t));
        }
    }

    #[test]
    fn rfc3339_refuses_what_it_is_not() {
        for bad in [
            "",
            "2026-12-24",
            "2026-12-24T18:00:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-12-24T24:00:00Z",
            "2026-12-24T18:00:00.Z",
            "2026-12-24T18:00:00+0800",
            "1969-12-31T23:59:59Z",
            "2026-12-24T18:00:00Z trailing",
            "２026-12-24T18:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800));
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC"), None);
        assert_eq!(parse_http_date("120"), None);
    }

    fn at(s: &str) -> u64 {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn pacific_midnight_in_winter_and_summer() {
        // Winter: PST, midnight is 08:00 UTC.
        assert_eq!(
            next_pacific_midnight(at("2026-01-15T12:00:00Z")),
            at("2026-01-16T08:00:00Z")
        );
        // 07:59 UTC on the 16th is still the 15th in Los Angeles.
        assert_eq!(
            next_pacific_midnight(at("2026-01-16T07:59:59Z")),
            at("2026-01-16T08:00:00Z")
        );
        // Exactly at midnight: the next one.
        assert_eq!(
            next_pacific_midnight(at("2026-01-16T08:00:00Z")),
            at("2026-01-17T08:00:00Z")
        );
        // Summer: PDT, midnight is 07:00 UTC.
        assert_eq!(
            next_pacific_midnight(at("2026-07-04T06:59:00Z")),
            at("2026-07-04T07:00:00Z")
        );
        assert_eq!(
            next_pacific_midnight(at("2026-07-04T07:00:00Z")),
            at("2026-07-05T07:00:00Z")
        );
        // New Year's Eve in Los Angeles is already 2027 in UTC.
        assert_eq!(
            next_pacific_midnight(at("2027-01-01T05:00:00Z")),
            at("2027-01-01T08:00:00Z")
        );
    }

    #[test]
    fn pacific_midnight_across_the_dst_switches() {
        // 2026: DST from Sunday 8 March to Sunday 1 November.
        assert_eq!(dst_dates(2026).0, days_from_civil(2026, 3, 8));
        assert_eq!(dst_dates(2026).1, days_from_civil(2026, 11, 1));
        // 2025: 9 March and 2 November; 2024: 10 March and 3 November.
        assert_eq!(dst_dates(2025).0, days_from_civil(2025, 3, 9));
        assert_eq!(dst_dates(2025).1, days_from_civil(2025, 11, 2));
        assert_eq!(dst_dates(2024).0, days_from_civil(2024, 3, 10));
        assert_eq!(dst_dates(2024).1, days_from_civil(2024, 11, 3));
        // Saturday 7 March 2026 noon PST: midnight of the switch day is still PST.
        assert_eq!(
            next_pacific_midnight(at("2026-03-07T20:00:00Z")),
            at("2026-03-08T08:00:00Z")
        );
        // The switch day itself (23 hours long): the next midnight is PDT.
        assert_eq!(
            next_pacific_midnight(at("2026-03-08T08:00:00Z")),
            at("2026-03-09T07:00:00Z")
        );
        assert_eq!(
            next_pacific_midnight(at("2026-03-08T12:00:00Z")),
            at("2026-03-09T07:00:00Z")
        );
        // Saturday 31 October: midnight of the November switch day is still PDT.
        assert_eq!(
            next_pacific_midnight(at("2026-10-31T20:00:00Z")),
            at("2026-11-01T07:00:00Z")
        );
        // The repeated hour of the switch day (25 hours long), 01:30 PDT then 01:30 PST.
        assert_eq!(
            next_pacific_midnight(at("2026-11-01T08:30:00Z")),
            at("2026-11-02T08:00:00Z")
        );
        assert_eq!(
            next_pacific_midnight(at("2026-11-01T09:30:00Z")),
            at("2026-11-02T08:00:00Z")
        );
        // A minute before the first PST midnight.
        assert_eq!(
            next_pacific_midnight(at("2026-11-02T07:59:00Z")),
            at("2026-11-02T08:00:00Z")
        );
    }

    #[test]
    fn pacific_midnight_is_always_within_a_day_and_a_local_midnight() {
        let mut t = at("2025-01-01T00:00:00Z");
        let end = at("2029-01-01T00:00:00Z");
        while t < end {
            let m = next_pacific_midnight(t);
            assert!(m > t && m - t <= 25 * 3600, "{t}");
            let local = m as i64 + pacific_offset(m);
            assert_eq!(local.rem_euclid(DAY as i64), 0, "{}", format_rfc3339(m));
            t += 3541;
        }
    }
}
