//! The results: rows of figure, value, spread and target, printed as a table and written
//! as a markdown fragment for docs/BENCHMARKS.md.

use std::fmt::Write as _;

use crate::stats::Summary;

/// How a figure is shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    Ms,
    MiB,
    Percent,
    PerSec,
    Ratio,
}

impl Unit {
    /// `v` with its unit, at a precision that fits the unit.
    pub fn fmt(self, v: f64) -> String {
        match self {
            Unit::Ms if v < 10.0 => format!("{v:.2} ms"),
            Unit::Ms => format!("{v:.0} ms"),
            Unit::MiB => format!("{v:.1} MiB"),
            Unit::Percent => format!("{v:.3} %"),
            Unit::PerSec => format!("{v:.0}/s"),
            Unit::Ratio => format!("{v:.2}"),
        }
    }
}

/// The target of a figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    AtMost(f64),
    AtLeast(f64),
    /// Shown for information (it has no target).
    Info,
}

impl Goal {
    fn met(self, v: f64) -> Option<bool> {
        match self {
            Goal::AtMost(t) => Some(v <= t),
            Goal::AtLeast(t) => Some(v >= t),
            Goal::Info => None,
        }
    }

    fn fmt(self, unit: Unit) -> String {
        match self {
            Goal::AtMost(t) => format!("≤ {}", unit.fmt(t)),
            Goal::AtLeast(t) => format!("≥ {}", unit.fmt(t)),
            Goal::Info => "—".into(),
        }
    }
}

/// One line of the results.
#[derive(Debug, Clone)]
pub struct Row {
    pub figure: String,
    /// The value compared with the target, formatted.
    pub value: String,
    /// How it spread over the repetitions.
    pub spread: String,
    pub target: String,
    /// `Some(true)` met, `Some(false)` missed, `None` no target / not measured.
    pub met: Option<bool>,
}

impl Row {
    /// A figure whose value is `s.p50`.
    pub fn median(figure: impl Into<String>, s: &Summary, unit: Unit, goal: Goal) -> Row {
        Row::value(figure, s.p50, spread(s, unit), unit, goal)
    }

    /// A figure with an explicit value and spread text.
    pub fn value(figure: impl Into<String>, v: f64, spread: String, unit: Unit, goal: Goal) -> Row {
        Row {
            figure: figure.into(),
            value: unit.fmt(v),
            spread,
            target: goal.fmt(unit),
            met: goal.met(v),
        }
    }

    /// The same row with `spread` in place of its spread text.
    pub fn note(mut self, spread: String) -> Row {
        self.spread = spread;
        self
    }

    /// A figure that could not be measured, with the reason.
    pub fn failed(figure: impl Into<String>, why: &str) -> Row {
        Row {
            figure: figure.into(),
            value: "not measured".into(),
            spread: why
                .lines()
                .next()
                .unwrap_or(why)
                .chars()
                .take(120)
                .collect(),
            target: String::new(),
            met: None,
        }
    }
}

/// "min … max (n=…)" for few samples, "p90 …, max … (n=…)" for many.
pub fn spread(s: &Summary, unit: Unit) -> String {
    if s.n >= 10 {
        format!(
            "p90 {}, p99 {}, max {} (n={})",
            unit.fmt(s.p90),
            unit.fmt(s.p99),
            unit.fmt(s.max),
            s.n
        )
    } else {
        format!("{} … {} (n={})", unit.fmt(s.min), unit.fmt(s.max), s.n)
    }
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "",
    }
}

/// The rows as an aligned plain-text table.
pub fn table(rows: &[Row]) -> String {
    let head = ["figure", "value", "spread", "target", ""];
    let cells: Vec<[&str; 5]> = rows
        .iter()
        .map(|r| {
            [
                &*r.figure,
                &*r.value,
                &*r.spread,
                &*r.target,
                verdict(r.met),
            ]
        })
        .collect();
    let mut width = head.map(|h| h.chars().count());
    for c in &cells {
        for (w, s) in width.iter_mut().zip(c) {
            *w = (*w).max(s.chars().count());
        }
    }
    let mut out = String::new();
    for line in std::iter::once(head).chain(cells) {
        let mut l = String::new();
        for (s, w) in line.iter().zip(width) {
            let _ = write!(l, "{s}{}  ", " ".repeat(w - s.chars().count()));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    }
    out
}

/// The rows as a markdown table, preceded by `heading` lines.
pub fn markdown(heading: &[String], rows: &[Row]) -> String {
    let mut out = String::new();
    for h in heading {
        out.push_str(h);
        out.push('\n');
    }
    out.push_str("\n| figure | value | spread | target | |\n|---|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            r.figure,
            r.value,
            r.spread.replace('|', "/"),
            r.target,
            verdict(r.met)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rows_compare_with_their_targets() {
        let s = Summary::of(&[80.0, 90.0, 120.0]).unwrap();
        let r = Row::median("start 50", &s, Unit::Ms, Goal::AtMost(100.0));
        assert_eq!(r.value, "90 ms");
        assert_eq!(r.met, Some(true));
        assert_eq!(r.spread, "80 ms … 120 ms (n=3)");
        let r = Row::value(
            "rps",
            15000.0,
            String::new(),
            Unit::PerSec,
            Goal::AtLeast(20000.0),
        );
        assert_eq!(r.met, Some(false));
        assert_eq!(r.target, "≥ 20000/s");
        let r = Row::value("x", 1.0, String::new(), Unit::Ratio, Goal::Info);
        assert_eq!(r.met, None);
    }

    #[test]
    fn table_and_markdown_hold_every_row() {
        let s = Summary::of(&(1..=20).map(f64::from).collect::<Vec<_>>()).unwrap();
        let rows = vec![
            Row::median("kill → port", &s, Unit::Ms, Goal::AtMost(3.0)),
            Row::failed("stop", "timed out\nmore"),
        ];
        let t = table(&rows);
        assert_eq!(t.lines().count(), 3);
        assert!(t.contains("MISSED"));
        let md = markdown(&["## Results".into()], &rows);
        assert!(md.starts_with("## Results\n"));
        assert!(md.contains("| stop | not measured | timed out |"));
        assert!(md.contains("p90 18 ms, p99 20 ms, max 20 ms (n=20)"));
    }
}
