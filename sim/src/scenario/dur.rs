//! Durations as scenario files write them: `"250ms"`, `"12.5s"`, `"2m"`, and signed steps like
//! `"-5s"` for a clock that jumps back.

use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

/// A duration written as `"250ms"`, `"12.5s"` or `"2m"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl Dur {
    /// Whole milliseconds, rounded down.
    pub fn ms(self) -> u64 {
        self.0.as_millis() as u64
    }
}

/// A duration as files write it: a number of `ms`, `s` or `m`, zero or more, fractions allowed
/// (`"12.5s"`); kept to the microsecond.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1_000.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        return Err(format!("`{text}` is not a duration: expected a number with a unit, like \"250ms\", \"12.5s\" or \"2m\""));
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: `{number}` is not a number"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!(
            "`{text}` is not a duration: it must be zero or more"
        ));
    }
    Ok(Duration::from_micros(
        (value * scale * 1_000.0).round() as u64
    ))
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map(Dur).map_err(de::Error::custom)
    }
}

/// Writes `d` as a file reads it back, to the microsecond: `"250ms"`, `"38.5ms"`. A drawn value
/// need not be whole milliseconds (a swarm's latency range starts at half its spike), and a
/// file that rounded it would replay another run.
pub fn format_duration(d: Duration) -> String {
    let micros = d.as_micros();
    let (ms, fraction) = (micros / 1_000, micros % 1_000);
    if fraction == 0 {
        format!("{ms}ms")
    } else {
        let digits = format!("{fraction:03}");
        format!("{ms}.{}ms", digits.trim_end_matches('0'))
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

/// A signed duration in milliseconds: `"5s"`, `"-250ms"`.
pub fn parse_offset(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let (sign, rest) = match t.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, t.strip_prefix('+').unwrap_or(t)),
    };
    Ok(sign * parse_duration(rest)?.as_millis() as i64)
}
