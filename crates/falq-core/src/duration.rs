//! Durations as people write them on the command line and in the simulator's fault
//! grammar: `500ms`, `30s`, `1.5s`, `5m`, `1h`, or a bare number of seconds.

use std::time::Duration;

/// The longest duration accepted: ten years, which any later arithmetic (deadlines,
/// sleeps) holds without overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);

/// Parses `500ms`, `30s`, `1.5s`, `5m`, `1h` or a bare number of seconds; the error says
/// what is wrong. Never panics, whatever the text.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).map_or((t, ""), |i| (&t[..i], t[i..].trim()));
    if num.is_empty() {
        return Err(format!("{text:?} is not a duration (try 30s, 5m, 1h or 500ms)"));
    }
    let n: f64 = num.parse().map_err(|_| format!("{text:?} is not a duration (try 30s, 5m, 1h or 500ms)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown unit {other:?} in {text:?} (use ms, s, m or h)")),
    };
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(format!("{text:?} is not a duration"));
    }
    if secs > MAX_DURATION.as_secs_f64() {
        return Err(format!("{text:?} is too long (at most 3650 days)"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{text:?} is not a duration: {e}"))
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
            ("1.5s", 1500),
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
            ("3d", "unknown unit"),
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
