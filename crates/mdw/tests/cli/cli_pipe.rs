//! A client command whose reader goes away early (`mdw config check | head`) ends quietly,
//! like other Unix tools, instead of panicking on the broken pipe.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use test_support::mdw_bin;

#[test]
fn closed_stdout_ends_quietly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("services.toml");
    // Enough services that the plan is far larger than a pipe buffer.
    let mut toml = String::new();
    for i in 0..3000 {
        toml.push_str(&format!(
            "[[services]]\nname = \"svc{i}\"\ncommand = [\"sleep\", \"1\"]\n\n"
        ));
    }
    std::fs::write(&path, toml).expect("write config");

    let mut child = Command::new(mdw_bin())
        .args(["config", "check"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mdw");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).expect("first bytes");
    drop(stdout);
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.status.success() || out.status.signal() == Some(13),
        "{:?}: {stderr}",
        out.status
    );
}
