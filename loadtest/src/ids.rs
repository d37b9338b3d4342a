//! Identifiers, seeds and wall-clock stamps of the emulated platform.
//!
//! Everything here is allocation-free: a UUID is a 36-byte array and a timestamp a 24-byte one,
//! so a virtual call carries its ids inline and a webhook body borrows them as `&str`.
//!
//! Randomness is split into independent *streams* per call ([`Stream`]), each a `StdRng` seeded
//! from the run's seed and the call's index. The caller's choices therefore repeat exactly for
//! the same `--seed` whatever else changes (fault injection on or off, other calls finishing in
//! another order), while ids come from a per-run nonce so that a repeated run never reuses a
//! session id a stateful server may still remember.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The independent random streams of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Session, call and event ids: seeded by the run nonce, fresh on every run.
    Ids,
    /// The caller's keys, silences and hang-ups, and the platform's transfer results.
    Caller,
    /// Fault injection: which deliveries are duplicated, delayed or reordered.
    Faults,
}

/// A well-mixed 64-bit hash (SplitMix64's finalizer), for deriving seeds.
pub const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The random generator of one stream of call `index`.
pub fn call_rng(seed: u64, index: u64, stream: Stream) -> StdRng {
    let stream: u64 = match stream {
        Stream::Ids => 1,
        Stream::Caller => 2,
        Stream::Faults => 3,
    };
    let mixed = splitmix64(splitmix64(seed ^ stream.wrapping_mul(0xA24B_AED4_963E_E407)) ^ index);
    StdRng::seed_from_u64(mixed)
}

/// A seed for a run that did not name one: the clock, mixed.
pub fn fresh_seed() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    splitmix64(
        now.as_secs()
            ^ u64::from(now.subsec_nanos()).rotate_left(32)
            ^ u64::from(std::process::id()),
    )
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A random (version 4) UUID in its 36-character text form.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Uuid([u8; 36]);

impl Uuid {
    /// A random UUID from `rng`.
    pub fn random<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes: [u8; 16] = rng.random();
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let mut text = [b'-'; 36];
        let mut at = 0;
        for (i, byte) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                at += 1;
            }
            text[at] = HEX[usize::from(byte >> 4)];
            text[at + 1] = HEX[usize::from(byte & 0x0f)];
            at += 2;
        }
        Self(text)
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        // Always ASCII hex and dashes.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::fmt::Debug for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A UTC ISO 8601 time as the platform writes it: `2026-11-20T09:15:11.502Z`, or
/// `2026-11-20T09:15:11Z` in session summaries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    text: [u8; 24],
    len: u8,
}

impl Timestamp {
    /// `time` with millisecond precision.
    pub fn millis(time: SystemTime) -> Self {
        Self::format(time, true)
    }

    /// `time` with second precision.
    pub fn seconds(time: SystemTime) -> Self {
        Self::format(time, false)
    }

    fn format(time: SystemTime, millis: bool) -> Self {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let days = i64::try_from(secs / 86_400).unwrap_or(0);
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        let mut text = [0u8; 24];
        put(&mut text, 0, u64::try_from(year).unwrap_or(0), 4);
        text[4] = b'-';
        put(&mut text, 5, u64::from(month), 2);
        text[7] = b'-';
        put(&mut text, 8, u64::from(day), 2);
        text[10] = b'T';
        put(&mut text, 11, rem / 3600, 2);
        text[13] = b':';
        put(&mut text, 14, rem / 60 % 60, 2);
        text[16] = b':';
        put(&mut text, 17, rem % 60, 2);
        let len = if millis {
            text[19] = b'.';
            put(&mut text, 20, u64::from(since.subsec_millis()), 3);
            text[23] = b'Z';
            24
        } else {
            text[19] = b'Z';
            20
        };
        Self { text, len }
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn put(out: &mut [u8], at: usize, mut value: u64, width: usize) {
    for i in (0..width).rev() {
        out[at + i] = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Year, month, day of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
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

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an ISO 8601 date-time such as `2026-11-20T09:15:11Z`, `2026-11-20T09:15:11.5+08:00`
/// or (taken as UTC) `2026-11-20T09:15:11`. `None` if it is not one.
pub fn parse_iso8601(text: &str) -> Option<SystemTime> {
    let b = text.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0u32;
    if b.get(at) == Some(&b'.') {
        let start = at + 1;
        at = start;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return None;
        }
        let digits = &text.trim()[start..at.min(start + 9)];
        nanos = digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32);
    }
    let offset_secs: i64 = match b.get(at) {
        None => 0,
        Some(b'Z' | b'z') if at + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == at + 6 && b[at + 3] == b':' => {
            let h = i64::from(num(at + 1..at + 3)?);
            let m = i64::from(num(at + 4..at + 6)?);
            let offset = h * 3600 + m * 60;
            if *sign == b'+' { offset } else { -offset }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_version_4_text() {
        let mut rng = StdRng::seed_from_u64(7);
        let id = Uuid::random(&mut rng);
        let s = id.as_str();
        assert_eq!(s.len(), 36);
        let parts: Vec<&str> = s.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "{s}");
        assert!(
            matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
            "{s}"
        );
        assert_ne!(Uuid::random(&mut rng), id);
    }

    #[test]
    fn streams_are_independent_and_repeatable() {
        let a: u64 = call_rng(1, 5, Stream::Caller).random();
        let b: u64 = call_rng(1, 5, Stream::Caller).random();
        let c: u64 = call_rng(1, 5, Stream::Faults).random();
        let d: u64 = call_rng(1, 6, Stream::Caller).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn timestamps_round_trip() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_166_111_502);
        assert_eq!(Timestamp::millis(t).as_str(), "2026-11-20T09:15:11.502Z");
        assert_eq!(Timestamp::seconds(t).as_str(), "2026-11-20T09:15:11Z");
        assert_eq!(
            parse_iso8601("2026-11-20T09:15:11.502Z"),
            Some(UNIX_EPOCH + Duration::from_millis(1_795_166_111_502))
        );
        assert_eq!(
            parse_iso8601("2026-11-20T17:15:11+08:00"),
            Some(UNIX_EPOCH + Duration::from_secs(1_795_166_111))
        );
        assert_eq!(
            Timestamp::seconds(UNIX_EPOCH).as_str(),
            "1970-01-01T00:00:00Z"
        );
        let leap = parse_iso8601("2024-02-29T00:00:00Z").unwrap();
        assert_eq!(Timestamp::seconds(leap).as_str(), "2024-02-29T00:00:00Z");
        for bad in [
            "",
            "tomorrow",
            "2026-13-01T00:00:00Z",
            "2026-11-20T09:15:11.Z",
            "2026-11-20T09:15:11Zx",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }
}
