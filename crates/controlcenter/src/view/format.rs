//! Small text formatters shared by the views.

use std::time::{Duration, SystemTime};

/// `12s`, `45m`, `2h 15m`, `3d 4h` (the user's plan's style).
pub fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

/// `HH:MM:SS` in UTC.
pub fn clock(t: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(t).to_string();
    text.get(11..19).unwrap_or("??:??:??").to_string()
}

/// `512K`, `12.3M`, `1.2G`.
pub fn bytes(n: u64) -> String {
    const K: f64 = 1024.0;
    // Display only: the precision lost converting to f64 does not show.
    #[allow(clippy::cast_precision_loss)]
    let f = n as f64;
    if f < K * K {
        format!("{:.0}K", f / K)
    } else if f < K * K * K {
        format!("{:.1}M", f / (K * K))
    } else {
        format!("{:.1}G", f / (K * K * K))
    }
}

/// Seconds with two decimals: `+1.25s`.
pub fn offset(d: Duration) -> String {
    format!("+{:.2}s", d.as_secs_f64())
}

/// `text` cut or padded to exactly `width` characters.
pub fn fit(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count > width {
        if width == 0 {
            return String::new();
        }
        let mut cut: String = text.chars().take(width - 1).collect();
        cut.push('…');
        cut
    } else {
        format!("{text}{}", " ".repeat(width - count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(uptime(Duration::from_secs(8100)), "2h 15m");
        assert_eq!(uptime(Duration::from_secs(2700)), "45m");
        assert_eq!(uptime(Duration::from_secs(12)), "12s");
        assert_eq!(uptime(Duration::from_secs(90000)), "1d 1h");
        assert_eq!(uptime(Duration::from_secs(83 * 60)), "1h 23m");
        assert_eq!(uptime(Duration::from_secs(2 * 86400 + 3600)), "2d 1h");
        assert_eq!(bytes(12 * 1024 * 1024 + 300 * 1024), "12.3M");
        assert_eq!(
            clock(SystemTime::UNIX_EPOCH + Duration::from_secs(3661)),
            "01:01:01"
        );
        assert_eq!(fit("Kant", 6), "Kant  ");
        assert_eq!(fit("Hypatia", 4), "Hyp…");
        assert_eq!(fit("x", 0), "");
    }
}
