//! A Russell served inside the test process (`russell_api::daemon::serve`) on a listener
//! the test bound; [`InProcess::stop`] ends it as SIGTERM would.

use std::path::Path;
use std::time::{Duration, Instant};

use russell_api::daemon::{DaemonError, ServeOptions, serve};
use tokio::net::TcpListener;

/// One Russell in this process.
pub struct InProcess {
    pub addr: String,
    /// Sending (or dropping) ends `serve`.
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<Result<(), DaemonError>>,
    /// A folder that lives as long as this Russell (its state dir, say).
    pub dir: Option<tempfile::TempDir>,
}

impl InProcess {
    /// Serves the services file `text` (read as if from `source`) on `listener` and waits
    /// (up to 10 s) until its health check says SERVING.
    pub async fn serve(text: &str, source: &Path, listener: TcpListener) -> Self {
        let config = russell_config::parse(text, source, Path::new("/bin/false"))
            .unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        let addr = listener.local_addr().expect("local addr").to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            config,
            ServeOptions::default(),
            Some(listener),
            async {
                let _ = stopped.await;
            },
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !matches!(russell_api::client::serving(&addr).await, Ok(true)) {
            assert!(
                Instant::now() < deadline,
                "Russell did not come up at {addr}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            addr,
            stop: Some(stop),
            task,
            dir: None,
        }
    }

    /// Ends `serve` and asserts that it returned Ok within 20 s.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let r = tokio::time::timeout(Duration::from_secs(20), &mut self.task).await;
        assert!(matches!(r, Ok(Ok(Ok(())))), "{r:?}");
    }
}
