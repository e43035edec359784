//! Human units in the configuration: durations (`30s`, `5m`, `2h`, `30d`, `2w`) and byte sizes
//! (`512KiB`, `64MiB`, `10MB`). A bare number is seconds or bytes.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written the way administrators write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

/// A byte count written the way administrators write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().map_err(|_| {
        format!("invalid duration {s:?}: expected a number with a unit, like 30s, 5m, 2h or 7d")
    })?;
    let factor = match unit.trim() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "ms" => 0.001,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86400.0,
        "w" | "week" | "weeks" => 7.0 * 86400.0,
        other => {
            return Err(format!("invalid duration {s:?}: unknown unit {other:?} (use ms, s, m, h, d or w)"));
        }
    };
    let secs = value * factor;
    if !secs.is_finite() || !(0.0..=1e10).contains(&secs) {
        return Err(format!("invalid duration {s:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// [`parse_duration`] where the unit is required: for command-line ages (`purge --older-than`,
/// `list --since`), where a bare `30` could be seconds or days, and a purge that guessed wrong
/// deletes a month of quarantine, and where a bare number may be meant as a date.
pub fn parse_duration_with_unit(s: &str) -> Result<Duration, String> {
    if s.trim().chars().last().is_none_or(|c| c.is_ascii_digit()) {
        return Err(format!("invalid duration {s:?}: a unit is required, like 30m, 2h or 7d"));
    }
    parse_duration(s)
}

pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: u64 = num.parse().map_err(|_| {
        format!("invalid size {s:?}: expected a whole number with an optional unit, like 512KiB or 64MiB")
    })?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1000 * 1000,
        "mib" => 1 << 20,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "invalid size {s:?}: unknown unit {other:?} (use KiB, MiB, GiB, KB, MB or GB)"
            ));
        }
    };
    value.checked_mul(factor).ok_or_else(|| format!("invalid size {s:?}: too large"))
}

/// Reads a bare non-negative integer or a string with a unit. A visitor rather than an
/// untagged enum, so the YAML parser still knows where the value was when it is rejected.
struct UnitVisitor<T> {
    expecting: &'static str,
    from_int: fn(u64) -> T,
    parse: fn(&str) -> Result<T, String>,
}

impl<T> serde::de::Visitor<'_> for UnitVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
        Ok((self.from_int)(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
        let v = u64::try_from(v)
            .map_err(|_| E::custom(format!("{v} is negative; expected {}", self.expecting)))?;
        Ok((self.from_int)(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        d.deserialize_any(UnitVisitor {
            expecting: "a duration such as 30s, 5m, 2h or 7d",
            from_int: |n| Span(Duration::from_secs(n)),
            parse: |s| parse_duration(s).map(Span),
        })
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        d.deserialize_any(UnitVisitor {
            expecting: "a size such as 512KiB or 64MiB",
            from_int: Bytes,
            parse: |s| parse_bytes(s).map(Bytes),
        })
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) {
            return write!(f, "{ms}ms");
        }
        let s = self.0.as_secs();
        match s {
            0 => write!(f, "0s"),
            s if s.is_multiple_of(86400) => write!(f, "{}d", s / 86400),
            s if s.is_multiple_of(3600) => write!(f, "{}h", s / 3600),
            s if s.is_multiple_of(60) => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        match b {
            0 => write!(f, "0"),
            b if b.is_multiple_of(1 << 30) => write!(f, "{}GiB", b >> 30),
            b if b.is_multiple_of(1 << 20) => write!(f, "{}MiB", b >> 20),
            b if b.is_multiple_of(1 << 10) => write!(f, "{}KiB", b >> 10),
            b => write!(f, "{b}"),
        }
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("12"), Ok(Duration::from_secs(12)));
        assert!(parse_duration("5 fortnights").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("10MB"), Ok(10_000_000));
        assert_eq!(parse_bytes("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_bytes("100"), Ok(100));
        assert!(parse_bytes("1.5MB").is_err());
        assert!(parse_bytes("99999999999GiB").unwrap_err().contains("too large"));
        assert!(parse_bytes("3 lots").is_err());
    }

    #[test]
    fn display_round_trips() {
        for s in ["30s", "5m", "2h", "7d", "250ms"] {
            assert_eq!(Span(parse_duration(s).unwrap()).to_string(), s);
        }
        for s in ["64MiB", "512KiB", "1GiB", "1000"] {
            assert_eq!(Bytes(parse_bytes(s).unwrap()).to_string(), s);
        }
    }
}
