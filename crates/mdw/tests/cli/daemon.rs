//! The daemon process: single instance, signals, systemd readiness, kill -9 and adoption,
//! remote listen refused.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use test_support::{Fixture, Svc, alive, group_alive, wait_for};

fn pids(st: &serde_json::Value) -> Vec<(String, u32)> {
    st["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["short_name"].as_str().unwrap().to_string(),
                s["pid"].as_u64().unwrap_or(0) as u32,
            )
        })
        .collect()
}

#[test]
fn second_instance_is_refused_naming_the_pid() {
    let f = Fixture::new(&[], "");
    let first = f.start();
    let mut second = f.spawn(&[
        "--listen",
        &format!("127.0.0.1:{}", test_support::free_port()),
    ]);
    let exit = second
        .wait_exit(Duration::from_secs(10))
        .expect("second Russell kept running");
    assert!(!exit.success());
    let log = second.log();
    assert!(log.contains(&format!("PID {}", first.pid())), "{log}");
    assert!(log.contains("mdw down"), "{log}");
    assert!(f.serving(), "the first one must be unharmed");
}

#[test]
fn sigterm_stops_every_service_then_exits_0() {
    let f = Fixture::new(
        &[
            Svc::demo("base"),
            Svc::demo("mid")
                .deps(&["base"])
                .args(&["--spawn-grandchild"]),
            Svc::demo("top").deps(&["mid"]),
        ],
        "",
    );
    let mut d = f.start();
    let st = f.wait_all_healthy(Duration::from_secs(30));
    let pids = pids(&st);
    test_support::signal(d.pid(), rustix::process::Signal::TERM);
    let exit = d
        .wait_exit(Duration::from_secs(30))
        .expect("Russell did not exit on SIGTERM");
    assert!(exit.success(), "{exit:?}\n{}", d.log());
    for (name, pid) in &pids {
        assert!(!alive(*pid), "{name} ({pid}) survived");
        assert!(!group_alive(*pid), "a process of {name}'s group survived");
    }
    assert!(
        !f.state_dir.join("russell.pid").exists(),
        "PID file left behind"
    );
}

#[test]
fn kill_9_then_a_new_russell_adopts_the_same_processes() {
    let f = Fixture::new(&[Svc::demo("a"), Svc::demo("b").deps(&["a"])], "");
    let mut d = f.start();
    let before = pids(&f.wait_all_healthy(Duration::from_secs(30)));
    d.kill9();
    for (name, pid) in &before {
        assert!(alive(*pid), "{name} died with Russell");
    }
    let _d2 = f.start();
    let after = pids(&f.wait_all_healthy(Duration::from_secs(30)));
    assert_eq!(before, after, "services were restarted instead of adopted");
    let st = f.status();
    for s in st["services"].as_array().unwrap() {
        assert_eq!(s["adopted"], true, "{s}");
        assert_eq!(s["state"], "running");
    }
    // Nothing duplicated: exactly one stand-in per port.
    for (name, _) in &before {
        let port = Fixture::service(&st, name)["http_port"]
            .as_u64()
            .unwrap()
            .to_string();
        let count = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                    let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                    args.windows(2)
                        .any(|w| w[0] == b"--http-port" && w[1] == port.as_bytes())
                })
            })
            .count();
        assert_eq!(count, 1, "{name} runs {count} times");
    }
}

#[test]
fn notify_socket_gets_ready() {
    let f = Fixture::new(&[], "");
    let sock_path = f.path("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let log = f.path("notify-russell.log");
    let mut child = std::process::Command::new(test_support::mdw_bin())
        .args(["serve", "russell", "--config"])
        .arg(&f.config)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("XDG_RUNTIME_DIR", f.path(""))
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 64];
    let n = sock.recv(&mut buf);
    test_support::signal(child.id(), rustix::process::Signal::TERM);
    let exit = child.wait().unwrap();
    let n = n.expect("no READY from Russell");
    assert_eq!(&buf[..n], b"READY=1");
    assert!(exit.success());
}

#[test]
fn remote_listen_needs_allow_remote() {
    let f = Fixture::new(&[], "");
    let mut d = f.spawn(&[
        "--listen",
        &format!("0.0.0.0:{}", test_support::free_port()),
    ]);
    let exit = d
        .wait_exit(Duration::from_secs(10))
        .expect("Russell listened on 0.0.0.0");
    assert!(!exit.success());
    assert!(d.log().contains("--allow-remote"), "{}", d.log());
}

#[test]
fn state_dir_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new(&[], "");
    let _d = f.start();
    let mode = std::fs::metadata(&f.state_dir)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
    assert!(wait_for(Duration::from_secs(5), || f
        .state_dir
        .join("russell.pid")
        .exists()));
}

#[test]
fn stopped_by_hand_stays_stopped_after_kill_9() {
    let f = Fixture::new(&[Svc::demo("keep"), Svc::demo("halt")], "");
    let mut d = f.start();
    f.wait_all_healthy(Duration::from_secs(30));
    let out = f.mdw(&["stop", "halt"]);
    assert!(out.status.success());
    let keep = Fixture::service(&f.status(), "keep")["pid"]
        .as_u64()
        .unwrap();
    d.kill9();
    let _d2 = f.start();
    let mut st = serde_json::Value::Null;
    assert!(wait_for(Duration::from_secs(20), || {
        st = f.status();
        Fixture::service(&st, "keep")["healthy"] == true
    }));
    assert_eq!(Fixture::service(&st, "keep")["pid"].as_u64().unwrap(), keep);
    let halt = Fixture::service(&st, "halt");
    assert_eq!(halt["state"], "stopped", "{halt}");
    assert_eq!(halt["stopped_by_user"], true);
    assert_eq!(halt["pid"], serde_json::Value::Null);
}
