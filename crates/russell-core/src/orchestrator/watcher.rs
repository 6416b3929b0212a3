//! Watched files: a change of a file that a service's `watch` names restarts that service
//! (once it was quiet for its `watch_debounce`), and with `[russell] watch_config` a change
//! of the services file reloads it.
//!
//! The kernel tells (inotify, through `notify`, on a thread of its own that sleeps until
//! something happens); there is no polling. The folders that hold the watched files are
//! watched, not the files themselves: an editor or `go build` replaces a file by renaming
//! a new one over it, which a watch on the old file would not see. Nothing watched: no
//! watcher, no thread. The actor publishes what to watch ([`WatchSpec`]) on start and on
//! every reload; this task owns the watcher and asks the actor for the restarts, holding
//! only a weak sender so that it never keeps the actor alive.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use russell_config::Config;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until};

use super::Command;

/// Quiet time after a change of the services file before it is reloaded.
const CONFIG_DEBOUNCE: Duration = Duration::from_millis(500);

/// What to watch: per service its patterns and quiet time, and the services file.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct WatchSpec {
    /// (short_name, patterns, debounce), only services that watch something.
    services: Vec<(String, Vec<glob::Pattern>, Duration)>,
    /// The services file, when `[russell] watch_config = true`.
    config_file: Option<PathBuf>,
    /// The state directory Russell runs with (a reload by the watcher keeps it).
    state_dir: PathBuf,
}

impl WatchSpec {
    pub(super) fn new(config: &Config) -> Self {
        let services = config
            .services
            .iter()
            .filter(|s| !s.watch.is_empty())
            .map(|s| {
                let patterns = s
                    .watch
                    .iter()
                    .filter_map(|p| glob::Pattern::new(&p.to_string_lossy()).ok())
                    .collect();
                (s.short_name.clone(), patterns, s.watch_debounce)
            })
            .collect();
        Self {
            services,
            config_file: config.russell.watch_config.then(|| config.source.clone()),
            state_dir: config.russell.state_dir.clone(),
        }
    }

    fn is_empty(&self) -> bool {
        self.services.is_empty() && self.config_file.is_none()
    }

    /// The folders to watch, and whether below them too.
    fn dirs(&self) -> Vec<(PathBuf, RecursiveMode)> {
        let mut out: Vec<(PathBuf, RecursiveMode)> = Vec::new();
        let patterns = self.services.iter().flat_map(|(_, ps, _)| ps);
        let files = self.config_file.iter().map(|f| watch_root(f));
        for (dir, mode) in patterns
            .map(|p| watch_root(Path::new(p.as_str())))
            .chain(files)
        {
            match out.iter_mut().find(|(d, _)| *d == dir) {
                Some(entry) if mode == RecursiveMode::Recursive => entry.1 = mode,
                Some(_) => {}
                None => out.push((dir, mode)),
            }
        }
        out
    }
}

/// The folder that holds what `pattern` can match: the part before the first component
/// with a glob character (for a plain path, its folder); recursive when the glob reaches
/// below that folder.
fn watch_root(pattern: &Path) -> (PathBuf, RecursiveMode) {
    let glob = |c: &Component<'_>| c.as_os_str().to_string_lossy().contains(['*', '?', '[']);
    let comps: Vec<Component<'_>> = pattern.components().collect();
    match comps.iter().position(glob) {
        None => {
            let dir = pattern.parent().unwrap_or(Path::new("/"));
            (dir.to_path_buf(), RecursiveMode::NonRecursive)
        }
        Some(first) => {
            let dir: PathBuf = comps[..first].iter().collect();
            let mode = if first + 1 < comps.len() {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            (dir, mode)
        }
    }
}

/// Whether `kind` can mean new contents: written, created, renamed over, attributes set.
fn changes_contents(kind: &notify::EventKind) -> bool {
    use notify::EventKind as K;
    use notify::event::{AccessKind, AccessMode};
    matches!(
        kind,
        K::Create(_) | K::Modify(_) | K::Any | K::Access(AccessKind::Close(AccessMode::Write))
    )
}

/// Runs until the actor is gone: rebuilds the watcher whenever the spec changes, and
/// asks the actor for a restart (or reload) when a watched file was quiet long enough.
pub(super) async fn run(
    mut spec_rx: watch::Receiver<Arc<WatchSpec>>,
    cmds: mpsc::WeakUnboundedSender<Command>,
) {
    loop {
        let spec = spec_rx.borrow_and_update().clone();
        if spec.is_empty() {
            if spec_rx.changed().await.is_err() {
                return;
            }
            continue;
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<notify::Event>();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                let _ = tx.send(ev);
            }
        });
        let mut watcher = match watcher {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!("cannot watch files ({e}); watch and watch_config do nothing");
                if spec_rx.changed().await.is_err() {
                    return;
                }
                continue;
            }
        };
        for (dir, mode) in spec.dirs() {
            if let Err(e) = watcher.watch(&dir, mode) {
                tracing::warn!(
                    "cannot watch {} ({e}); create the folder and reload to watch it",
                    dir.display()
                );
            }
        }
        // Service → (restart due, the file that changed); the services file's due.
        let mut due: HashMap<String, (Instant, PathBuf)> = HashMap::new();
        let mut config_due: Option<Instant> = None;
        loop {
            let next = due.values().map(|d| d.0).chain(config_due).min();
            tokio::select! {
                changed = spec_rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
                Some(ev) = rx.recv() => {
                    if !changes_contents(&ev.kind) {
                        continue;
                    }
                    let now = Instant::now();
                    for path in &ev.paths {
                        for (short, patterns, debounce) in &spec.services {
                            if patterns.iter().any(|p| p.matches_path(path)) {
                                due.insert(short.clone(), (now + *debounce, path.clone()));
                            }
                        }
                        if spec.config_file.as_deref() == Some(path.as_path()) {
                            config_due = Some(now + CONFIG_DEBOUNCE);
                        }
                    }
                }
                () = sleep_until_some(next) => {
                    let now = Instant::now();
                    let Some(cmds) = cmds.upgrade() else { return };
                    let fire: Vec<String> = due
                        .iter()
                        .filter(|(_, d)| d.0 <= now)
                        .map(|(s, _)| s.clone())
                        .collect();
                    for short in fire {
                        if let Some((_, file)) = due.remove(&short) {
                            let why = format!("watched file {} changed", file.display());
                            let _ = cmds.send(Command::Watched { short, why });
                        }
                    }
                    if config_due.is_some_and(|d| d <= now) {
                        config_due = None;
                        if let Some(file) = &spec.config_file {
                            tokio::spawn(reload(cmds, file.clone(), spec.state_dir.clone()));
                        }
                    }
                }
            }
        }
        drop(watcher);
    }
}

/// Reloads the services file for `watch_config`; the outcome goes to the log (and an
/// applied reload is an event).
async fn reload(cmds: mpsc::UnboundedSender<Command>, file: PathBuf, state_dir: PathBuf) {
    tracing::info!("{} changed: reloading it", file.display());
    let read = file.clone();
    let loaded = tokio::task::spawn_blocking(move || russell_config::load(&read)).await;
    let mut config = match loaded {
        Ok(Ok(config)) => config,
        Ok(Err(errors)) => {
            tracing::warn!("reload refused, Russell keeps the previous config:\n{errors}");
            return;
        }
        Err(_) => return,
    };
    // A state directory given on the command line stays; only a restart changes it.
    config.russell.state_dir = state_dir;
    let (reply, rx) = oneshot::channel();
    let cmd = Command::Reload {
        config: Box::new(config),
        dry_run: false,
        reply,
    };
    if cmds.send(cmd).is_err() {
        return;
    }
    drop(cmds);
    match rx.await {
        Ok(Ok(report)) => tracing::info!(
            "reloaded {}: {} services and {} externals changed",
            file.display(),
            report.diff.services.len(),
            report.diff.externals.len()
        ),
        Ok(Err(e)) => tracing::warn!("reload refused: {e}"),
        Err(_) => {}
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_of_a_file_or_before_the_first_glob_is_watched() {
        let root = |p: &str| watch_root(Path::new(p));
        assert_eq!(
            root("/a/bin/mdw"),
            ("/a/bin".into(), RecursiveMode::NonRecursive)
        );
        assert_eq!(
            root("/a/configs/*.toml"),
            ("/a/configs".into(), RecursiveMode::NonRecursive)
        );
        assert_eq!(
            root("/a/src/**/*.go"),
            ("/a/src".into(), RecursiveMode::Recursive)
        );
    }
}
