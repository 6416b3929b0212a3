//! Points in time as people type them on the command line (`mdw logs --since/--until`): a
//! duration back from now (`10m`, `2h`, `1h30m`, `3days`, humantime's units) or an
//! RFC 3339 time (`2026-12-03T04:00:00Z`, `2026-12-03T05:00:00+01:00`; without an offset,
//! like `2026-12-03 04:00:00`, it is read as UTC).

use std::time::{Duration, SystemTime};

/// What `--since`/`--until` accept, for error messages and help.
pub const FORMS: &str = "a duration back from now (10m, 2h, 1h30m, 3days) or an RFC 3339 time \
     (2026-12-03T04:00:00Z, 2026-12-03T05:00:00+01:00; without an offset it is UTC)";

/// Parses `text` as a duration ago (relative to `now`) or an RFC 3339 time.
pub fn parse_at(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let text = text.trim();
    if let Ok(ago) = humantime::parse_duration(text) {
        return now
            .checked_sub(ago)
            .filter(|t| *t >= SystemTime::UNIX_EPOCH)
            .ok_or_else(|| format!("{text:?} reaches back before 1970; give a shorter duration"));
    }
    parse_time(text).ok_or_else(|| format!("{text:?} is not {FORMS}"))
}

/// The clap value parser: [`parse_at`] relative to the moment of parsing.
pub fn parse_arg(text: &str) -> Result<SystemTime, String> {
    parse_at(text, SystemTime::now())
}

/// An RFC 3339 time, with `Z`, a `±HH:MM` offset, or none (UTC).
fn parse_time(text: &str) -> Option<SystemTime> {
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Some(t);
    }
    // humantime knows only UTC: take a numeric offset off and apply it here.
    let split = text.len().checked_sub(6)?;
    let (local, offset) = (text.get(..split)?, text.get(split..)?);
    let sign = match offset.as_bytes().first()? {
        b'+' => 1i64,
        b'-' => -1i64,
        _ => return None,
    };
    let (hours, minutes) = offset.get(1..)?.split_once(':')?;
    let (hours, minutes): (u64, u64) = (hours.parse().ok()?, minutes.parse().ok()?);
    if hours > 23 || minutes > 59 || !local.contains(['T', 't', ' ']) {
        return None;
    }
    let local = humantime::parse_rfc3339_weak(local).ok()?;
    let shift = Duration::from_secs(hours * 3600 + minutes * 60);
    // Local time = UTC + offset, so UTC = local - offset.
    if sign > 0 {
        local.checked_sub(shift)
    } else {
        local.checked_add(shift)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn utc(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn durations_and_times() {
        let now = utc("2026-12-03T04:00:00Z");
        let ok = |s: &str| parse_at(s, now).unwrap();
        assert_eq!(ok("10m"), utc("2026-12-03T03:50:00Z"));
        assert_eq!(ok("1h30m"), utc("2026-12-03T02:30:00Z"));
        assert_eq!(ok(" 2h "), utc("2026-12-03T02:00:00Z"));
        assert_eq!(ok("2026-12-03T01:02:03Z"), utc("2026-12-03T01:02:03Z"));
        assert_eq!(
            ok("2026-12-03T01:02:03.250Z"),
            utc("2026-12-03T01:02:03.250Z")
        );
        assert_eq!(ok("2026-12-03 01:02:03"), utc("2026-12-03T01:02:03Z"));
        assert_eq!(ok("2026-12-03T02:02:03+01:00"), utc("2026-12-03T01:02:03Z"));
        assert_eq!(ok("2026-12-02T20:32:03-04:30"), utc("2026-12-03T01:02:03Z"));
        for bad in [
            "",
            "yesterday",
            "10",
            "2026-12-03",
            "2026-12-03T01:02:03+25:00",
        ] {
            let e = parse_at(bad, now).unwrap_err();
            assert!(
                e.contains("a duration back from now (10m, 2h"),
                "{bad}: {e}"
            );
        }
        assert!(
            parse_at("100000years", now)
                .unwrap_err()
                .contains("before 1970")
        );
    }
}
