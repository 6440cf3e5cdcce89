//! Small pure helpers: seeded hashing, uuid-like request ids, durations and ISO 8601 timestamps.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The splitmix64 finalizer: a fast, well-mixed hash of one `u64`.
pub(crate) fn mix64(z: u64) -> u64 {
    let mut z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seeded hash of bytes (FNV-1a, then mixed).
pub(crate) fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    mix64(h)
}

/// A hash mapped to `[0, 1)`.
pub(crate) fn unit_interval(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The request id of the `seq`-th job of a simulator seeded with `seed`: uuid v4 shaped,
/// deterministic, different for every `seq`.
pub(crate) fn request_id(seed: u64, seq: u64) -> String {
    let a = mix64(seed ^ mix64(seq.wrapping_mul(0xA24B_AED4_963E_E407)));
    let b = mix64(a ^ seq.rotate_left(17));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        8 | ((b >> 62) & 3),
        (b >> 48) & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

/// The seed a job gets when its input names none: deterministic from the simulator's seed,
/// a non-negative `i64` (fal's seeds are integers, often above 2^53).
pub(crate) fn default_job_seed(seed: u64, seq: u64) -> i64 {
    (mix64(seed ^ 0x5EED_0000_0000_0000 ^ mix64(seq)) >> 1) as i64
}

/// Formats a duration the way the fault grammar reads it back: `250ms`, `2s`, `1500ms`.
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) { format!("{}s", ms / 1000) } else { format!("{ms}ms") }
}

/// Parses `250ms`, `2s`, `1m`, `1h` or a bare number of seconds (the project's one
/// duration parser, `falq_api::parse_duration`).
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    falq_api::parse_duration(text).ok()
}

/// An ISO 8601 UTC timestamp with milliseconds: `2024-05-01T12:34:56.789Z`.
pub(crate) fn iso8601(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, (rem / 60) % 60, rem % 60, since.subsec_millis())
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_table() {
        let check = |secs: u64, ms: u64, expected: &str| {
            let t = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(ms);
            assert_eq!(iso8601(t), expected);
        };
        check(0, 0, "1970-01-01T00:00:00.000Z");
        check(951_782_400, 5, "2000-02-29T00:00:00.005Z");
        check(1_714_566_896, 789, "2024-05-01T12:34:56.789Z");
        check(4_102_444_799, 999, "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn durations_table() {
        let check = |text: &str, expected: Option<u64>| {
            assert_eq!(parse_duration(text).map(|d| d.as_millis() as u64), expected, "{text}");
        };
        check("250ms", Some(250));
        check("2s", Some(2000));
        check("1.5", Some(1500));
        check("1.5s", Some(1500));
        check("1m", Some(60_000));
        check("3", Some(3000));
        check("0", Some(0));
        check("", None);
        check("s", None);
        check("-1s", None);
        check("2h", Some(7_200_000));
        check("1e3s", None);
        assert_eq!(format_duration(Duration::from_millis(2000)), "2s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn request_ids_are_uuid_shaped_deterministic_and_distinct() {
        let a = request_id(7, 1);
        assert_eq!(a, request_id(7, 1));
        assert_ne!(a, request_id(7, 2));
        assert_ne!(a, request_id(8, 1));
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, vec![8, 4, 4, 4, 12]);
        assert_eq!(&a[14..15], "4");
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
        let ids: std::collections::HashSet<String> = (0..10_000).map(|s| request_id(1, s)).collect();
        assert_eq!(ids.len(), 10_000);
    }

    #[test]
    fn default_seeds_are_non_negative_and_large() {
        let seeds: Vec<i64> = (0..100).map(|s| default_job_seed(1, s)).collect();
        assert!(seeds.iter().all(|&s| s >= 0));
        assert!(seeds.iter().any(|&s| s > (1i64 << 53)));
        assert_ne!(seeds[0], seeds[1]);
    }
}
