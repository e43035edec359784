//! Time as the store records it: UTC, to the millisecond, written as RFC 3339
//! (`2026-11-28T20:15:02.123Z`) in metadata, as `2026-11-28 20:15:02` for people and as
//! `20261128T201502Z` inside ids and date directories.
//!
//! Only UTC is ever produced: a quarantine is read by people in several time zones and by
//! scripts, and one zone with a visible `Z` is the only form nobody misreads. The calendar
//! arithmetic is the few lines of Howard Hinnant's civil-date algorithms rather than a date
//! crate, because nothing here needs time zones or locales. Years outside 1970–9999 are
//! refused: they cannot be a time a message was received, and every fixed-width form above
//! stays fixed-width inside that range.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const MS_PER_DAY: i64 = 86_400_000;
/// 9999-12-31T23:59:59.999Z.
const MAX_MS: i64 = 253_402_300_799_999;

/// A point in time, UTC, millisecond precision, between 1970 and 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// A calendar date and time of day, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

impl Timestamp {
    /// The current time. A clock set before 1970 reads as 1970 (the id must still be valid);
    /// one after 9999 as the end of 9999.
    pub fn now() -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
            .unwrap_or_else(|| if SystemTime::now() < UNIX_EPOCH { Timestamp(0) } else { Timestamp(MAX_MS) })
    }

    /// `None` outside 1970–9999.
    pub fn from_system_time(t: SystemTime) -> Option<Timestamp> {
        let ms = t.duration_since(UNIX_EPOCH).ok()?.as_millis();
        Timestamp::from_unix_millis(i64::try_from(ms).ok()?)
    }

    /// `None` outside 1970–9999.
    pub fn from_unix_millis(ms: i64) -> Option<Timestamp> {
        (0..=MAX_MS).contains(&ms).then_some(Timestamp(ms))
    }

    pub fn unix_millis(self) -> i64 {
        self.0
    }

    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0 as u64)
    }

    /// `self - d`, stopping at 1970.
    pub fn saturating_sub(self, d: Duration) -> Timestamp {
        let d = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_sub(d).max(0))
    }

    /// `self + d`, stopping at the end of 9999.
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        let d = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(d).min(MAX_MS))
    }

    pub(super) fn civil(self) -> Civil {
        let days = self.0.div_euclid(MS_PER_DAY);
        let ms = self.0.rem_euclid(MS_PER_DAY) as u32;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: ms / 3_600_000,
            minute: ms / 60_000 % 60,
            second: ms / 1000 % 60,
            millis: ms % 1000,
        }
    }

    /// `None` for a date or time that does not exist, or one outside 1970–9999.
    pub(super) fn from_civil(c: Civil) -> Option<Timestamp> {
        if !(1970..=9999).contains(&c.year)
            || !(1..=12).contains(&c.month)
            || c.day == 0
            || c.day > days_in_month(c.year, c.month)
            || c.hour > 23
            || c.minute > 59
            || c.second > 59
            || c.millis > 999
        {
            return None;
        }
        let days = days_from_civil(c.year, c.month, c.day);
        let ms = days * MS_PER_DAY
            + i64::from(c.hour) * 3_600_000
            + i64::from(c.minute) * 60_000
            + i64::from(c.second) * 1000
            + i64::from(c.millis);
        Timestamp::from_unix_millis(ms)
    }

    /// The first millisecond of this UTC day.
    pub(super) fn start_of_day(self) -> Timestamp {
        Timestamp(self.0 - self.0.rem_euclid(MS_PER_DAY))
    }

    /// The last millisecond of this UTC day.
    pub(super) fn end_of_day(self) -> Timestamp {
        Timestamp((self.start_of_day().0 + MS_PER_DAY - 1).min(MAX_MS))
    }

    /// `2026-11-28T20:15:02.123Z`: what metadata stores.
    pub fn rfc3339(self) -> String {
        let c = self.civil();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
        )
    }

    /// `2026-11-28 20:15:02`: what people read (always UTC).
    pub fn human(self) -> String {
        let c = self.civil();
        format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", c.year, c.month, c.day, c.hour, c.minute, c.second)
    }

    /// `20261128T201502Z`: the time part of an id.
    pub(super) fn compact(self) -> String {
        let c = self.civil();
        format!("{:04}{:02}{:02}T{:02}{:02}{:02}Z", c.year, c.month, c.day, c.hour, c.minute, c.second)
    }

    /// `20261128`: the date directory an entry received at this time lives in.
    pub(super) fn day_name(self) -> String {
        let c = self.civil();
        format!("{:04}{:02}{:02}", c.year, c.month, c.day)
    }

    /// Reads RFC 3339 (`2026-11-28T20:15:02Z`, `2026-11-28T21:15:02.5+01:00`, `t` or a space
    /// for `T`) or a bare date (`2026-11-28`, meaning its midnight UTC). A time of day without
    /// `Z` or an offset is refused rather than guessed: local time or UTC would each be wrong
    /// for half the people typing it.
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp, String> {
        let bad =
            |why: &str| format!("invalid date {s:?}: {why} (expected 2026-11-28 or 2026-11-28T20:15:02Z)");
        let b = s.as_bytes();
        let num = |from: usize, len: usize| -> Option<u32> {
            let digits = b.get(from..from + len)?;
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(digits).ok()?.parse().ok()
        };
        let (Some(year), Some(month), Some(day)) = (num(0, 4), num(5, 2), num(8, 2)) else {
            return Err(bad("no date"));
        };
        if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
            return Err(bad("no date"));
        }
        let mut c = Civil { year: i64::from(year), month, day, hour: 0, minute: 0, second: 0, millis: 0 };
        if b.len() == 10 {
            return Timestamp::from_civil(c).ok_or_else(|| bad("no such date"));
        }
        if !matches!(b[10], b'T' | b't' | b' ') {
            return Err(bad("unexpected text after the date"));
        }
        let (Some(hour), Some(minute), Some(second)) = (num(11, 2), num(14, 2), num(17, 2)) else {
            return Err(bad("no time of day"));
        };
        if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
            return Err(bad("no time of day"));
        }
        (c.hour, c.minute, c.second) = (hour, minute, second);
        let mut i = 19;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return Err(bad("empty fraction of a second"));
            }
            // Milliseconds: the first three digits, the rest dropped.
            let frac = &s[start..i];
            let padded = format!("{:0<3}", &frac[..frac.len().min(3)]);
            c.millis = padded.parse().map_err(|_| bad("bad fraction of a second"))?;
        }
        let offset_minutes: i64 = match &s[i..] {
            "Z" | "z" => 0,
            "" => return Err(bad("a time of day needs Z or an offset such as +01:00")),
            rest => {
                let rb = rest.as_bytes();
                let sign = match rb[0] {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return Err(bad("unexpected text after the time")),
                };
                let h = num(i + 1, 2);
                let m = num(i + 4, 2);
                match (h, m, rb.get(3), rb.len()) {
                    (Some(h), Some(m), Some(b':'), 6) if h < 24 && m < 60 => {
                        sign * (i64::from(h) * 60 + i64::from(m))
                    }
                    _ => return Err(bad("bad offset")),
                }
            }
        };
        let local = Timestamp::from_civil(c).ok_or_else(|| bad("no such date or time"))?;
        Timestamp::from_unix_millis(local.0 - offset_minutes * 60_000).ok_or_else(|| bad("out of range"))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

/// Reads an age the way administrators write one, in the configuration's one grammar
/// (`90s`, `30m`, `2h`, `7d`, `2w`, `1.5d`), the unit required (see
/// [`crate::config::parse_duration_with_unit`]).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::config::parse_duration_with_unit(s)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `z` days after 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn known_dates_convert_both_ways() {
        assert_eq!(at("1970-01-01T00:00:00Z").unix_millis(), 0);
        assert_eq!(at("2000-02-29T12:00:00Z").unix_millis(), 951_825_600_000);
        assert_eq!(at("2026-11-28T20:15:02.123Z").unix_millis(), 1_795_896_902_123);
        assert_eq!(at("9999-12-31T23:59:59.999Z").unix_millis(), MAX_MS);
        for ms in [0, 951_825_600_000, 1_795_896_902_123, 4_107_542_400_000, MAX_MS] {
            let t = Timestamp(ms);
            assert_eq!(Timestamp::from_civil(t.civil()), Some(t), "{ms}");
            assert_eq!(at(&t.rfc3339()), t);
        }
    }

    #[test]
    fn forms_for_people_ids_and_directories() {
        let t = at("2026-11-28T20:15:02.123Z");
        assert_eq!(t.rfc3339(), "2026-11-28T20:15:02.123Z");
        assert_eq!(t.human(), "2026-11-28 20:15:02");
        assert_eq!(t.compact(), "20261128T201502Z");
        assert_eq!(t.day_name(), "20261128");
        assert_eq!(t.start_of_day(), at("2026-11-28T00:00:00Z"));
        assert_eq!(t.end_of_day(), at("2026-11-28T23:59:59.999Z"));
    }

    #[test]
    fn offsets_fractions_and_bare_dates_are_read() {
        assert_eq!(at("2026-11-28T21:15:02+01:00"), at("2026-11-28T20:15:02Z"));
        assert_eq!(at("2026-11-28 19:45:02-00:30"), at("2026-11-28T20:15:02Z"));
        assert_eq!(at("2026-11-28t20:15:02.5z").unix_millis() % 1000, 500);
        assert_eq!(at("2026-11-28T20:15:02.123456Z").unix_millis() % 1000, 123);
        assert_eq!(at("2026-11-28"), at("2026-11-28T00:00:00Z"));
    }

    #[test]
    fn impossible_or_ambiguous_dates_are_refused() {
        for s in [
            "",
            "2026-02-29",
            "2026-13-01",
            "2026-11-31",
            "1969-12-31",
            "2026-11-28T20:15:02",
            "2026-11-28T24:00:00Z",
            "2026-11-28T20:15:60Z",
            "2026-11-28T20:15:02+1:00",
            "2026-11-28T20:15:02.Z",
            "2026-11-28X",
            "26-11-28",
            "2026-11-28T20:15:02Zjunk",
            "２０２６-11-28",
        ] {
            assert!(Timestamp::parse_rfc3339(s).is_err(), "{s:?} was accepted");
        }
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_duration("0d"), Ok(Duration::ZERO));
        // The configuration's grammar: fractions and long unit names too.
        assert_eq!(parse_duration("1.5d"), Ok(Duration::from_secs(36 * 3600)));
        assert_eq!(parse_duration("7 days"), Ok(Duration::from_secs(7 * 86_400)));
        for s in ["30", "d", "-1d", "99999999999999999999d", "2026-11-28", ""] {
            assert!(parse_duration(s).is_err(), "{s:?} was accepted");
        }
    }

    #[test]
    fn arithmetic_stays_in_range() {
        assert_eq!(Timestamp(5).saturating_sub(Duration::from_secs(1)), Timestamp(0));
        assert_eq!(Timestamp(MAX_MS).saturating_add(Duration::from_secs(1)), Timestamp(MAX_MS));
        assert_eq!(Timestamp(1000).saturating_sub(Duration::from_millis(1)).unix_millis(), 999);
    }
}
