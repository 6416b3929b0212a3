//! `state_dir/state.json`: what survives a crash of Russell.
//!
//! For each service: the PID, process group and /proc start time of its process (so that a
//! reused PID is never mistaken for it), and whether the user stopped it (its desired
//! state), and where the FIFOs live. Written atomically: write a temporary file, fsync, rename,
//! fsync the directory (by one writer task that the actor feeds, `orchestrator/actor.rs`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name inside the state directory.
pub const FILE_NAME: &str = "state.json";

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    /// Format version (1).
    pub version: u32,
    /// By short_name.
    pub services: BTreeMap<String, ServiceRecord>,
    /// Where the services' stdout/stderr FIFOs live when not in `state_dir/run` (a private
    /// directory on tmpfs), so that a Russell started after a crash reopens the same ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_dir: Option<PathBuf>,
}

/// One service's record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// The running process (group leader when Russell spawned it), if any.
    pub process: Option<ProcessRecord>,
    /// The user stopped it: stays stopped after Russell restarts.
    #[serde(default)]
    pub stopped_by_user: bool,
}

/// A process Russell is responsible for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    pub pid: u32,
    /// Its process group when it leads one (Russell's own spawns always do).
    pub pgid: Option<u32>,
    /// Start time from /proc/\<pid\>/stat (clock ticks since boot).
    pub start_time: u64,
}

/// Errors reading or writing the state file.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("cannot write state file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot read state file {path} (check its permissions, or move it away to start afresh)"
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "state file {path} is not valid: delete or move it to start afresh \
         (Russell then does not adopt services that still run from before)"
    )]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl StateFile {
    /// Reads `dir/state.json`; a missing file is `Ok(None)` (first start).
    pub fn read(dir: &Path) -> Result<Option<Self>, StateFileError> {
        let path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateFileError::Read { path, source }),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| StateFileError::Parse { path, source })
    }

    /// Writes `dir/state.json` atomically (tmp file, fsync, rename, fsync dir), mode 0600.
    pub fn write(&self, dir: &Path) -> Result<(), StateFileError> {
        let path = dir.join(FILE_NAME);
        let tmp = dir.join(format!("{FILE_NAME}.tmp"));
        let err = |source| StateFileError::Write {
            path: path.clone(),
            source,
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| err(e.into()))?;
        write_atomically(&path, &tmp, &json, 0o600).map_err(err)
    }
}

/// Writes `bytes` to `path` atomically, the one way every file Russell keeps is written:
/// write `tmp` (created with `mode`), fsync it, rename it over `path`, fsync the directory
/// (best effort) so the rename itself survives a crash. Readers see the old file or the new
/// one, never a torn one.
pub fn write_atomically(path: &Path, tmp: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(tmp, path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Ok(d) = std::fs::File::open(dir.unwrap_or(Path::new("."))) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(StateFile::read(dir.path()).unwrap(), None);
        let mut s = StateFile {
            version: 1,
            ..Default::default()
        };
        s.services.insert(
            "kant".into(),
            ServiceRecord {
                process: Some(ProcessRecord {
                    pid: 42,
                    pgid: Some(42),
                    start_time: 1234,
                }),
                stopped_by_user: false,
            },
        );
        s.services.insert(
            "hegel".into(),
            ServiceRecord {
                process: None,
                stopped_by_user: true,
            },
        );
        s.write(dir.path()).unwrap();
        assert_eq!(StateFile::read(dir.path()).unwrap(), Some(s));
        assert!(!dir.path().join("state.json.tmp").exists());
    }

    /// A fixture of format version 1, kept so that old files stay readable.
    #[test]
    fn reads_version_1_fixture() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE_NAME),
            r#"{"version":1,"services":{"kant":{"process":{"pid":7,"pgid":null,"start_time":9}}}}"#,
        )
        .unwrap();
        let s = StateFile::read(dir.path()).unwrap().unwrap();
        let rec = &s.services["kant"];
        assert!(!rec.stopped_by_user);
        assert_eq!(rec.process.unwrap().pid, 7);
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_tmp() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (path, tmp) = (dir.path().join("f"), dir.path().join("f.tmp"));
        write_atomically(&path, &tmp, b"one", 0o600).unwrap();
        write_atomically(&path, &tmp, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert!(!tmp.exists());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn garbage_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "{nope").unwrap();
        let e = StateFile::read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("state.json"), "{e}");
    }
}
