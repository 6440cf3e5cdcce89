//! Durations as people write them on the command line and in the simulator's fault
//! grammar: anything `humantime` reads (`500ms`, `1.5s`, `5m`, `1h 30m`, `2days`), or a bare
//! number of seconds (`3`, `1.5`).

use std::time::Duration;

/// The longest duration accepted: ten years, which any later arithmetic (deadlines,
/// sleeps) holds without overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);

/// Parses a duration (`500ms`, `30s`, `5m`, `1h 30m`, or a bare number of seconds); the
/// error says what is wrong. Never panics, whatever the text.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let too_long = || format!("{text:?} is too long (at most 3650 days)");
    let d = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // A bare number is seconds, fractions too.
        let secs: f64 = t.parse().map_err(|_| format!("{text:?} is not a duration (try 30s, 5m, 1h or 500ms)"))?;
        if secs > MAX_DURATION.as_secs_f64() {
            return Err(too_long());
        }
        Duration::try_from_secs_f64(secs).map_err(|e| format!("{text:?} is not a duration: {e}"))?
    } else {
        humantime::parse_duration(t).map_err(|e| match e {
            humantime::DurationError::NumberOverflow => too_long(),
            humantime::DurationError::UnknownUnit { unit, .. } => {
                format!("unknown unit {unit:?} in {text:?} (use ms, s, m, h or d)")
            }
            other => format!("{text:?} is not a duration: {other} (try 30s, 5m, 1h or 500ms)"),
        })?
    };
    if d > MAX_DURATION {
        return Err(too_long());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_table() {
        let ms = |text: &str| parse_duration(text).map(|d| d.as_millis() as u64);
        for (text, want) in [
            ("250ms", 250),
            ("2s", 2000),
            ("1.5", 1500),
            ("1.5s", 1500),
            ("1h 30m", 5_400_000),
            ("2days", 172_800_000),
            ("1m", 60_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("3", 3000),
            ("0", 0),
            (" 30s ", 30_000),
        ] {
            assert_eq!(ms(text), Ok(want), "{text}");
        }
        for (text, says) in [
            ("", "not a duration"),
            ("s", "not a duration"),
            ("soon", "not a duration"),
            ("3 fortnights", "unknown unit"),
            ("4000d", "too long"),
            ("-1s", "not a duration"),
            ("1..2s", "not a duration"),
            ("99999999999999999999999s", "too long"),
            ("1e400", "unknown unit"),
        ] {
            let e = parse_duration(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
