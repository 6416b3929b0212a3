//! `mdw logs --grep/--since/--until/--json` against a real Russell whose stand-in prints
//! numbered lines (`mdw demo --log-rate`: odd numbers on stdout, even on stderr) into log
//! files of 1 KiB, so they rotate every few lines: matches come from the rotated files and
//! the current one, windows cut by time, and `-f` delivers only matching live lines.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use russell_api::pb;
use test_support::{Fixture, Logged, Svc, mdw_bin, wait_until};

/// Small files, many of them: every few lines rotate, and nothing is lost in the test.
const LOGS: &str = "\n[logs]\nmax_file_size = \"1KiB\"\nmax_files = 200\n";

/// One `--json` line.
#[derive(Debug, Clone)]
struct Line {
    time: SystemTime,
    time_text: String,
    service: String,
    stream: String,
    line: String,
}

/// Parses `mdw logs --json` output, checking every object's shape.
fn parse(out: &str) -> Vec<Line> {
    out.lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            let time_text = v["time"].as_str().unwrap().to_string();
            // RFC 3339 in UTC with milliseconds: 2026-12-03T04:00:00.123Z.
            assert_eq!(time_text.len(), 24, "{time_text}");
            assert!(time_text.ends_with('Z'), "{time_text}");
            Line {
                time: humantime::parse_rfc3339(&time_text).unwrap(),
                time_text,
                service: v["service"].as_str().unwrap().to_string(),
                stream: v["stream"].as_str().unwrap().to_string(),
                line: v["line"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

/// The number in `kant line N stdout`.
fn number(l: &Line) -> u64 {
    l.line.split(' ').nth(2).unwrap().parse().unwrap()
}

/// Runs `mdw logs ARGS` and returns its stdout, asserting success.
fn logs(f: &Fixture, args: &[&str]) -> String {
    let out = f.mdw(&[&["logs"], args].concat());
    assert!(
        out.status.success(),
        "mdw logs {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn log_dir(f: &Fixture) -> std::path::PathBuf {
    f.state_dir.join("logs")
}

/// How many rotated files `kant` has.
fn rotated(f: &Fixture) -> usize {
    (1..)
        .take_while(|k| log_dir(f).join(format!("kant.log.{k}")).exists())
        .count()
}

fn started(services: &[Svc]) -> (Fixture, test_support::Daemon) {
    let f = Fixture::new(services, LOGS);
    let d = f.start();
    f.wait_all_healthy(Duration::from_secs(30));
    wait_until(
        "eight rotated log files of kant",
        Duration::from_secs(30),
        || rotated(&f) >= 8,
    );
    (f, d)
}

#[test]
fn grep_and_json_reach_the_rotated_files_and_the_current_one() {
    let (f, _d) = started(&[Svc::demo("kant").args(&["--log-rate", "50"])]);

    // The first line is long gone from the current file.
    let first = parse(&logs(
        &f,
        &["kant", "--grep", "^kant line 1 stdout$", "--json"],
    ));
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(
        (first[0].service.as_str(), first[0].stream.as_str()),
        ("kant", "stdout")
    );
    let current = std::fs::read_to_string(log_dir(&f).join("kant.log")).unwrap();
    assert!(!current.contains(" kant line 1 stdout\n"), "{current}");
    // Its time is the one on disk.
    let rotated_text: String = (1..=rotated(&f))
        .map(|k| {
            std::fs::read_to_string(log_dir(&f).join(format!("kant.log.{k}"))).unwrap_or_default()
        })
        .collect();
    assert!(
        rotated_text.contains(&format!("{} out kant line 1 stdout\n", first[0].time_text)),
        "{first:?} not in the rotated files"
    );

    // Every stderr line, from the first rotated file up to one in the current file: none
    // missing, none twice, in order.
    // (The current file may have just rotated and be empty: then the newest rotated one.)
    let newest = ["kant.log", "kant.log.1"]
        .iter()
        .filter_map(|n| std::fs::read_to_string(log_dir(&f).join(n)).ok())
        .find(|t| !t.is_empty())
        .unwrap();
    let last_now = newest.lines().last().unwrap().split(' ').nth(4).unwrap();
    let last_now: u64 = last_now.parse().unwrap();
    let errs = parse(&logs(&f, &["kant", "--grep", "stderr$", "--json"]));
    let numbers: Vec<u64> = errs.iter().map(number).collect();
    assert!(numbers.len() as u64 >= last_now / 2, "{numbers:?}");
    let expected: Vec<u64> = (1..=numbers.len() as u64).map(|i| 2 * i).collect();
    assert_eq!(numbers, expected);
    assert!(
        errs.iter()
            .all(|l| l.stream == "stderr" && l.service == "kant")
    );
    assert!(errs.windows(2).all(|w| w[0].time <= w[1].time));

    // -n still caps: the newest N matches.
    let three = parse(&logs(
        &f,
        &["kant", "--grep", "stderr$", "--json", "-n", "3"],
    ));
    assert_eq!(three.len(), 3);
    assert!(number(&three[0]) >= *numbers.last().unwrap() - 4);

    // Text output without --json: the lines as they were printed.
    let text = logs(&f, &["kant", "--grep", "^kant line (3|5) stdout$"]);
    assert_eq!(text, "kant line 3 stdout\nkant line 5 stdout\n");

    // Mistakes name what was wrong and what is accepted.
    let bad = f.mdw(&["logs", "kant", "--grep", "panic("]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        err.contains("\"panic(\" is not a valid regular expression"),
        "{err}"
    );
    let code = grpc_code(
        &f,
        pb::StreamLogsRequest {
            name: "kant".into(),
            tail: 10,
            grep: "panic(".into(),
            ..Default::default()
        },
    );
    assert_eq!(code, tonic::Code::InvalidArgument);
    let bad = f.mdw(&["logs", "kant", "--since", "yesterday"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        err.contains("\"yesterday\" is not a duration back from now (10m, 2h"),
        "{err}"
    );
}

#[test]
fn since_and_until_cut_a_window_across_services() {
    let (f, _d) = started(&[
        Svc::demo("kant").args(&["--log-rate", "50"]),
        Svc::demo("hume").args(&["--log-rate", "20"]),
    ]);
    let all = parse(&logs(&f, &["kant", "--since", "10m", "--json"]));
    assert!(all.len() > 100, "{}", all.len());
    // From the stand-in's first words on ("kant: http health on …", "ready").
    let first = all
        .iter()
        .find(|l| l.line.starts_with("kant line "))
        .unwrap();
    assert_eq!(number(first), 1, "--since 10m reaches the first line");
    assert!(all[0].line.starts_with("kant: "), "{:?}", all[0]);

    // A window between two lines' times, both ends included.
    let (from, to) = (&all[20], &all[60]);
    let window = parse(&logs(
        &f,
        &[
            "kant",
            "--since",
            &from.time_text,
            "--until",
            &to.time_text,
            "--json",
        ],
    ));
    let expected: Vec<String> = all
        .iter()
        .filter(|l| l.time >= from.time && l.time <= to.time)
        .map(|l| l.line.clone())
        .collect();
    let got: Vec<String> = window.iter().map(|l| l.line.clone()).collect();
    assert_eq!(got, expected);
    assert!(got.contains(&from.line) && got.contains(&to.line));

    // A recent window holds only recent lines.
    let asked = SystemTime::now();
    let recent = parse(&logs(&f, &["kant", "--since", "1s", "--json"]));
    assert!(!recent.is_empty() && recent.len() < all.len());
    let floor = asked - Duration::from_millis(1500);
    assert!(recent.iter().all(|l| l.time >= floor), "{recent:?}");

    // Before anything was printed: nothing.
    let before = humantime::format_rfc3339_millis(all[0].time - Duration::from_secs(1)).to_string();
    assert_eq!(logs(&f, &["kant", "--until", &before, "--json"]), "");

    // All services, merged by time and prefixed: `mdw logs --since 10m --grep X`.
    let text = logs(
        &f,
        &["--since", "10m", "--grep", "^(kant|hume) line 7 stdout$"],
    );
    let mut got: Vec<&str> = text.lines().collect();
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "hume       | hume line 7 stdout",
            "kant       | kant line 7 stdout"
        ]
    );
}

#[test]
fn follow_with_grep_delivers_matching_live_lines_only() {
    let (f, _d) = started(&[Svc::demo("kant").args(&["--log-rate", "50"])]);
    // History from the files, then live lines: one sequence, no gap, nothing twice.
    let follow = Logged::spawn(
        Command::new(mdw_bin())
            .args(["--russell", &f.addr, "logs", "kant", "-f", "--json"])
            .args(["--since", "10m", "--grep", "^kant line [0-9]*5 stdout$"]),
        f.path("follow.out"),
    );
    let history_until = SystemTime::now();
    wait_until("live matching lines", Duration::from_secs(20), || {
        parse_complete(&follow.log())
            .iter()
            .filter(|l| l.time > history_until + Duration::from_millis(500))
            .count()
            >= 3
    });
    let seen = parse_complete(&follow.log());
    let numbers: Vec<u64> = seen.iter().map(number).collect();
    let expected: Vec<u64> = (0..numbers.len() as u64).map(|i| 5 + 10 * i).collect();
    assert_eq!(
        numbers, expected,
        "every match once, in order, nothing else"
    );
    assert!(seen.iter().all(|l| l.stream == "stdout"));

    // -f with --until ends by itself once that time has passed, with live lines up to it.
    let until = humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_secs(1));
    let until = until.to_string();
    let asked = Instant::now();
    let args = ["kant", "-f", "-n", "0", "--until", &until, "--json"];
    let live = parse(&logs(&f, &args));
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    let end = humantime::parse_rfc3339(&until).unwrap();
    assert!(live.len() >= 10, "{live:?}");
    assert!(live.iter().all(|l| l.time <= end), "{live:?}");
}

/// The code StreamLogs answers `req` with (Ok when it opens a stream).
fn grpc_code(f: &Fixture, req: pb::StreamLogsRequest) -> tonic::Code {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ch = russell_api::client::channel(&f.addr).await.unwrap();
        let mut c = pb::russell_service_client::RussellServiceClient::new(ch);
        match c.stream_logs(req).await {
            Ok(_) => tonic::Code::Ok,
            Err(s) => s.code(),
        }
    })
}

/// The complete lines of a growing output (a last line still being written is left out).
fn parse_complete(out: &str) -> Vec<Line> {
    let end = out.rfind('\n').map_or(0, |i| i + 1);
    parse(&out[..end])
}
