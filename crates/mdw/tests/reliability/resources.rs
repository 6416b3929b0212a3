//! Reliability 6 — resource bounds. A service flooding its output (a `yes` of 200-byte lines
//! beside the stand-in's own `--log-rate`) does not grow Russell's RSS past a bound, and its
//! log file rotates at `[logs] max_file_size`, keeping `max_files` old files. A service
//! that forks 200 processes into its group is fully gone after StopService.
//!
//! `cargo test -p mdw --test reliability -- resources:: --nocapture` (about 20 s).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use russell_api::pb;
use test_support::prelude::*;

const MAX_FILE_SIZE: u64 = 1 << 20;
const MAX_FILES: usize = 2;
/// Russell splits lines longer than this (russell-core `logs::MAX_LINE`): the most a file
/// may overshoot the configured size.
const MAX_LINE: u64 = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_flood_keeps_memory_bounded_and_rotates() {
    let mut env = Env::new();
    let mut flood = Svc::quick("flood");
    let line = "F".repeat(200);
    flood.command = Some(vec![
        "sh".into(),
        "-c".into(),
        format!(
            "yes {line} >&2 & exec {mdw} demo --name flood --http-port {} --log-rate 100000",
            flood.http_port,
            mdw = mdw_bin(),
        ),
    ]);
    let quiet = Svc::quick("quiet");
    let mut toml = env.header(
        "autostart = false",
        &format!("max_file_size = {MAX_FILE_SIZE}\nmax_files = {MAX_FILES}\ntail_lines = 200"),
    );
    toml.push_str(&flood.toml());
    toml.push_str(&quiet.toml());
    env.write_config(&toml);
    let mut c = env.start_russell().await;
    let russell = env.russell_pid().unwrap();
    let idle_rss = rss_bytes(russell).unwrap();
    let _ = c
        .start_all_services(env.req(pb::StartAllRequest { force: false }))
        .await;
    env.wait_all_running(&mut c, Duration::from_secs(30)).await;

    // Sample Russell's RSS while the flood runs, and how many bytes went through: what the
    // flood's processes wrote (into Russell's FIFOs) is what Russell read.
    let logs = env.state_dir.join("logs");
    let st = env.status(&mut c).await;
    let flood_group = proc_stat(by_name(&st)["flood"].pid).unwrap().pgrp;
    let written = || -> u64 {
        procs_in_group(flood_group)
            .into_iter()
            .filter_map(wchar)
            .sum()
    };
    // What the group wrote, summed over the loop as growth only: a process of the group
    // that exits (a restart under load) takes its count with it, which must not count
    // as negative.
    let mut written_last = written();
    let mut offered = 0u64;
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut rotations_seen = 0usize;
    let mut last_size = 0u64;
    let mut bytes_through = 0u64;
    while started.elapsed() < Duration::from_secs(8) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        samples.push(rss_bytes(russell).expect("Russell died in the flood"));
        let now_written = written();
        offered += now_written.saturating_sub(written_last);
        written_last = now_written;
        // Count bytes: the current file grows, and shrinks when it rotates.
        let size = std::fs::metadata(logs.join("flood.log")).map_or(0, |m| m.len());
        if size < last_size {
            rotations_seen += 1;
            bytes_through += last_size;
        }
        last_size = size;
    }
    bytes_through += last_size;
    let secs = started.elapsed().as_secs_f64();
    let max_rss = *samples.iter().max().unwrap();
    let half = samples.len() / 2;
    let first_half_max = *samples[..half].iter().max().unwrap();
    let second_half_max = *samples[half..].iter().max().unwrap();
    eprintln!(
        "flood: {:.1} MB/s read by Russell from the service over {secs:.1} s \
         ({rotations_seen} rotations seen by polling, >= {:.1} MB/s seen in the files); \
         Russell RSS idle {} KiB, max {} KiB (first half {} KiB, second half {} KiB)",
        offered as f64 / secs / 1e6,
        bytes_through as f64 / secs / 1e6,
        idle_rss / 1024,
        max_rss / 1024,
        first_half_max / 1024,
        second_half_max / 1024
    );
    assert!(
        offered > 4 * MAX_FILE_SIZE && bytes_through > 4 * MAX_FILE_SIZE,
        "the flood wrote only {bytes_through} bytes: not a flood"
    );
    // Bounded: tail 200 lines × 64 KiB worst case is 12.5 MiB; allow 48 MiB over idle.
    assert!(
        max_rss < idle_rss + (48 << 20),
        "Russell's RSS grew from {idle_rss} to {max_rss} under a log flood"
    );
    // Flat: the second half does not keep growing past the first.
    assert!(
        second_half_max <= first_half_max + (8 << 20),
        "Russell's RSS keeps growing under a log flood: {first_half_max} then {second_half_max}"
    );

    // The quiet service is not starved by its noisy neighbour.
    let st = env.status(&mut c).await;
    assert_status_matches_reality(&st);
    assert_eq!(by_name(&st)["quiet"].restart_count, 0, "{}", summary(&st));
    eprintln!("flood: after the flood {}", summary(&st));

    // Stopping the flood stops `yes` too.
    let flood_pgrp = proc_stat(by_name(&st)["flood"].pid).unwrap().pgrp;
    c.stop_service(env.req(pb::ServiceRequest {
        name: "flood".into(),
    }))
    .await
    .expect("StopService flood");
    assert!(
        wait_for(Duration::from_secs(10), || procs_in_group(flood_pgrp)
            .is_empty()),
        "flood group still has {:?}",
        procs_in_group(flood_pgrp)
    );

    // Rotation: flood.log and flood.log.1 … .MAX_FILES, each at most the size plus a line.
    // Russell may still drain the FIFOs for a moment after the group died: wait until the
    // listing stops changing.
    let listing = || {
        let mut files: Vec<(String, u64)> = std::fs::read_dir(&logs)
            .unwrap()
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().map_or(0, |m| m.len()),
                )
            })
            .filter(|(n, _)| n.starts_with("flood.log"))
            .collect();
        files.sort();
        files
    };
    let mut files = listing();
    let settled = wait_for(Duration::from_secs(5), || {
        std::thread::sleep(Duration::from_millis(200));
        let now = listing();
        let same = now == files;
        files = now;
        same
    });
    assert!(
        settled,
        "flood log files keep changing after the stop: {files:?}"
    );
    eprintln!("flood log files: {files:?}");
    assert!(
        files.len() == MAX_FILES + 1,
        "want flood.log plus {MAX_FILES} rotated files, got {files:?}"
    );
    for (name, size) in &files {
        assert!(
            *size <= MAX_FILE_SIZE + MAX_LINE,
            "{name} is {size} bytes, over max_file_size {MAX_FILE_SIZE}"
        );
        if name != "flood.log" {
            assert!(
                *size >= MAX_FILE_SIZE / 2,
                "{name} rotated early at {size} bytes"
            );
        }
    }
    // Nothing lost inside a file: the stand-in's numbered stdout lines (odd numbers)
    // follow each other without a gap in every file.
    let mut gaps = Vec::new();
    for (name, _) in &files {
        let text = std::fs::read_to_string(logs.join(name)).unwrap_or_default();
        let mut prev: Option<u64> = None;
        for l in text.lines() {
            let Some(rest) = l.split("flood line ").nth(1) else {
                continue;
            };
            let Some(n) = rest
                .strip_suffix(" stdout")
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            if let Some(p) = prev
                && n != p + 2
            {
                gaps.push(format!("{name}: line {p} then {n}"));
            }
            prev = Some(n);
        }
    }
    assert!(
        gaps.is_empty(),
        "lines lost: {:?}",
        &gaps[..gaps.len().min(10)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forking_service_is_fully_gone_after_stop() {
    let mut env = Env::new();
    let mut forker = Svc::quick("forker");
    forker.command = Some(vec![
        "sh".into(),
        "-c".into(),
        format!(
            "i=0; while [ $i -lt 200 ]; do sleep 100000 & i=$((i+1)); done; \
             exec {mdw} demo --name forker --http-port {}",
            forker.http_port,
            mdw = mdw_bin(),
        ),
    ]);
    let other = Svc::quick("other");
    env.write_services(&[forker, other]);
    let mut c = env.start_russell().await;
    let russell = env.russell_pid().unwrap();
    let _ = c
        .start_all_services(env.req(pb::StartAllRequest { force: false }))
        .await;
    let st = env.wait_all_running(&mut c, Duration::from_secs(30)).await;
    let leader = by_name(&st)["forker"].pid;
    let pgrp = proc_stat(leader).unwrap().pgrp;
    let in_group = procs_in_group(pgrp).len();
    assert!(
        in_group >= 201,
        "only {in_group} processes in the forker's group"
    );

    c.stop_service(env.req(pb::ServiceRequest {
        name: "forker".into(),
    }))
    .await
    .expect("StopService forker");
    assert!(
        wait_for(Duration::from_secs(15), || procs_in_group(pgrp).is_empty()),
        "{} of {in_group} processes survived the stop",
        procs_in_group(pgrp).len()
    );
    let st = env.status(&mut c).await;
    assert_eq!(by_name(&st)["forker"].state, "stopped", "{}", summary(&st));
    assert_eq!(by_name(&st)["other"].state, "running", "{}", summary(&st));
    // Only Russell and the other service's leader are left of this environment.
    let other_pid = by_name(&st)["other"].pid;
    let mut left = env.marked();
    left.sort_unstable();
    let mut want = vec![russell, other_pid];
    want.sort_unstable();
    assert_eq!(
        left,
        want,
        "left: {:?}",
        left.iter().map(|p| cmdline(*p)).collect::<Vec<_>>()
    );
    assert!(
        wait_for(Duration::from_secs(3), || zombie_children(russell)
            .is_empty()),
        "zombies under Russell: {:?}",
        zombie_children(russell)
    );
}

/// The registry is open to every client (no token on loopback by default): its memory must
/// have a bound far below the machine's. Russell caps an entry at 64 KiB and all entries
/// together at 16 MiB (russell-api `server/registry/mod.rs`). The largest shape the field
/// limits once allowed (64 metadata pairs of 4000-byte keys and values, ~0.5 MiB) is
/// refused; then entries of the largest accepted shape (64 pairs of 200-byte keys and
/// 700-byte values, TTL 1 h) are registered until the registry is full, and Russell's
/// growth is measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_memory_is_bounded() {
    const ENTRIES: u64 = 400;
    const BOUND: u64 = 64 << 20;
    let mut env = Env::new();
    env.write_services(&[Svc::quick("r")]);
    let mut c = env.start_russell().await;
    let russell = env.russell_pid().unwrap();
    let entry = |i: u64, key_len: usize, value_len: usize| {
        let metadata = (0..64)
            .map(|k| {
                let key = format!("{k:04}{}", "k".repeat(key_len - 4));
                (key, "v".repeat(value_len))
            })
            .collect();
        let mut r = pb::RegisterRequest {
            name: format!("big{i}"),
            address: "127.0.0.1".into(),
            ports: Default::default(),
            metadata,
            ttl: Some(Default::default()),
        };
        if let Some(d) = r.ttl.as_mut() {
            d.seconds = 3600;
        }
        r
    };
    let huge = c.register(env.req(entry(0, 4000, 4000))).await;
    assert_eq!(
        huge.map(|_| ()).map_err(|s| s.code()),
        Err(tonic::Code::InvalidArgument)
    );
    let before = rss_bytes(russell).unwrap();
    let (mut accepted, mut full) = (0u64, 0u64);
    for i in 0..ENTRIES {
        match c.register(env.req(entry(i, 200, 700))).await {
            Ok(_) => accepted += 1,
            Err(s) if s.code() == tonic::Code::ResourceExhausted => full += 1,
            Err(s) => panic!("Register big{i}: {s:?}"),
        }
    }
    let after = rss_bytes(russell).unwrap();
    let growth = after.saturating_sub(before);
    eprintln!(
        "registry: {accepted}/{ENTRIES} entries of ~62 KiB accepted, {full} refused as full; \
         RSS {} → {} KiB (+{} MiB)",
        before / 1024,
        after / 1024,
        growth >> 20
    );
    assert!(env.russell_running());
    assert!(
        full > 0,
        "all {accepted} entries of ~62 KiB accepted: no total cap"
    );
    assert!(
        growth < BOUND,
        "a client grew Russell by {} MiB through Register alone",
        growth >> 20
    );
}

/// Followers that never read: StreamLogs(follow) streams on a service printing 60 KB lines
/// as fast as it can. Russell holds at most 256 KiB per stream for its client and serves
/// at most 256 log streams (russell-api `server/streams.rs`). Opens that many stalled
/// streams, over several connections (an HTTP/2 connection carries at most 200), checks
/// that one more is refused with RESOURCE_EXHAUSTED, and measures Russell's growth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_log_followers_stay_bounded() {
    const STREAMS: u64 = 256;
    const PER_CONNECTION: u64 = 64;
    const BOUND: u64 = 512 << 20;
    let mut env = Env::new();
    let mut loud = Svc::quick("loud");
    loud.command = Some(vec![
        "sh".into(),
        "-c".into(),
        format!(
            "yes {} & exec {mdw} demo --name loud --http-port {}",
            "L".repeat(60_000),
            loud.http_port,
            mdw = mdw_bin(),
        ),
    ]);
    env.write_services(&[loud]);
    let mut c = env.start_russell().await;
    env.wait_all_running(&mut c, Duration::from_secs(30)).await;
    let russell = env.russell_pid().unwrap();
    let before = rss_bytes(russell).unwrap();
    let follow = || pb::StreamLogsRequest {
        name: "loud".into(),
        tail: 0,
        follow: true,
        ..Default::default()
    };
    let mut held = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..STREAMS.div_ceil(PER_CONNECTION) {
        let mut client = env.connect().await;
        for _ in 0..PER_CONNECTION.min(STREAMS - held.len() as u64) {
            let s = client
                .stream_logs(env.req(follow()))
                .await
                .expect("StreamLogs")
                .into_inner();
            held.push(s);
        }
        clients.push(client);
    }
    let refused = c.stream_logs(env.req(follow())).await.err();
    let refused = refused.map(|s| (s.code(), s.message().to_string()));
    let mut max = before;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        max = max.max(rss_bytes(russell).expect("Russell died"));
    }
    drop(held);
    let growth = max.saturating_sub(before);
    eprintln!(
        "stalled followers: {STREAMS} streams; RSS {} KiB before, max {} KiB; \
         {} KiB per stalled stream; one more: {refused:?}",
        before / 1024,
        max / 1024,
        growth / STREAMS / 1024,
    );
    assert!(env.russell_running());
    assert!(
        matches!(&refused, Some((tonic::Code::ResourceExhausted, m)) if m.contains("256")),
        "stream {} beyond the limit: {refused:?}",
        STREAMS + 1
    );
    let st = env.status(&mut c).await;
    assert_eq!(st.services.len(), 1);
    assert!(
        growth < BOUND,
        "{STREAMS} stalled log followers grew Russell by {} MiB",
        growth >> 20
    );
}
