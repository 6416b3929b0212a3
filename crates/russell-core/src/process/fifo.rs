//! Named FIFOs for a service's stdout and stderr: `<run_dir>/<short>.stdout|.stderr`, where
//! `run_dir` is a private directory on tmpfs or `state_dir/run` (see `choose_run_dir`).
//!
//! The child gets each FIFO opened read-write: that open counts as a reader, so the child
//! never sees SIGPIPE/EPIPE even when Russell is gone (at worst it blocks once the 1 MiB
//! buffer is full). Russell reads the other end and, after a restart of its own, reopens
//! the same paths for an adopted process.

use std::fs::File;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use tokio::net::unix::pipe;

/// Pipe buffer asked for (Linux allows up to /proc/sys/fs/pipe-max-size unprivileged).
const PIPE_SIZE: usize = 1 << 20;

/// The two FIFO paths of a service.
pub(crate) fn paths(run_dir: &Path, short: &str) -> (PathBuf, PathBuf) {
    (
        run_dir.join(format!("{short}.stdout")),
        run_dir.join(format!("{short}.stderr")),
    )
}

/// Creates (if needed) both FIFOs and opens each read-write for the child.
pub(crate) fn open_for_child(run_dir: &Path, short: &str) -> std::io::Result<(File, File)> {
    let (out, err) = paths(run_dir, short);
    Ok((open_rw(&out)?, open_rw(&err)?))
}

/// Opens both FIFOs for reading (non-blocking, registered with tokio).
pub(crate) fn open_readers(
    run_dir: &Path,
    short: &str,
) -> std::io::Result<(pipe::Receiver, pipe::Receiver)> {
    let (out, err) = paths(run_dir, short);
    let open = |p: &Path| pipe::OpenOptions::new().open_receiver(p);
    Ok((open(&out)?, open(&err)?))
}

fn open_rw(path: &Path) -> std::io::Result<File> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_fifo() => {}
        Ok(_) => {
            std::fs::remove_file(path)?;
            make(path)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => make(path)?,
        Err(e) => return Err(e),
    }
    // On Linux a read-write open of a FIFO never blocks.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    // Bigger buffer: a child of a dead Russell blocks only after 1 MiB; best effort.
    let _ = rustix::pipe::fcntl_setpipe_size(&f, PIPE_SIZE);
    Ok(f)
}

fn make(path: &Path) -> std::io::Result<()> {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o600),
    )?;
    Ok(())
}
