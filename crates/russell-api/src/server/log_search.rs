//! StreamLogs' filters: the request's `since`, `until` and `grep` checked into the core's
//! [`LogFilter`], and the filtered history read from the log files (the rotated ones too)
//! on a blocking thread, so that a search through large files holds up neither the
//! orchestrator's actor nor other calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use russell_core::LogLine;
use russell_core::log_search::{LogFilter, SearchLimit};
use tonic::Status;

use super::RussellApi;
use crate::pb;

/// Longest `grep` a request may carry.
pub const MAX_GREP_LEN: usize = 4096;

/// The filter a StreamLogsRequest asks for, or INVALID_ARGUMENT naming the field.
pub(super) fn filter(req: &pb::StreamLogsRequest) -> Result<LogFilter, Status> {
    let since = time("since", req.since)?;
    let until = time("until", req.until)?;
    if let (Some(s), Some(u)) = (since, until)
        && u < s
    {
        return Err(Status::invalid_argument(format!(
            "until ({}) is before since ({}); give a window whose end is after its start",
            humantime::format_rfc3339_millis(u),
            humantime::format_rfc3339_millis(s)
        )));
    }
    let grep = if req.grep.is_empty() {
        None
    } else if req.grep.len() > MAX_GREP_LEN {
        return Err(Status::invalid_argument(format!(
            "grep is {} bytes long; at most {MAX_GREP_LEN} are accepted",
            req.grep.len()
        )));
    } else {
        Some(regex::Regex::new(&req.grep).map_err(|e| {
            Status::invalid_argument(format!(
                "grep {:?} is not a valid regular expression (Rust regex syntax): {e}",
                req.grep
            ))
        })?)
    };
    Ok(LogFilter { since, until, grep })
}

fn time(field: &str, t: Option<prost_types::Timestamp>) -> Result<Option<SystemTime>, Status> {
    t.map(|t| {
        SystemTime::try_from(t).map_err(|e| {
            Status::invalid_argument(format!(
                "{field} = {t} is not a time Russell can compare ({e})"
            ))
        })
    })
    .transpose()
}

/// Sets its flag when dropped: the search stops when the call goes away mid-way.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The newest `lines` lines (and at most `bytes` of text) of `service`'s files (a
/// short_name; None = all services) that pass `filter`, oldest first.
pub(super) async fn history(
    api: &RussellApi,
    service: Option<&str>,
    filter: &LogFilter,
    lines: usize,
    bytes: usize,
) -> Result<Vec<LogLine>, Status> {
    let Some(files) = api.orch.log_files(service) else {
        return Ok(Vec::new());
    };
    let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
    let flag = Arc::clone(&cancel.0);
    let filter = filter.clone();
    let limit = SearchLimit { lines, bytes };
    tokio::task::spawn_blocking(move || files.search(&filter, limit, &flag))
        .await
        .map_err(|e| Status::internal(format!("the log search failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(
        since: Option<SystemTime>,
        until: Option<SystemTime>,
        grep: &str,
    ) -> pb::StreamLogsRequest {
        pb::StreamLogsRequest {
            since: since.map(prost_types::Timestamp::from),
            until: until.map(prost_types::Timestamp::from),
            grep: grep.to_string(),
            ..Default::default()
        }
    }

    fn message(r: Result<LogFilter, Status>) -> String {
        match r {
            Ok(_) => "accepted".into(),
            Err(s) => {
                assert_eq!(s.code(), tonic::Code::InvalidArgument, "{s:?}");
                s.message().to_string()
            }
        }
    }

    #[test]
    fn checks_grep_and_the_window() {
        let now = SystemTime::now();
        let hour = std::time::Duration::from_secs(3600);
        assert!(filter(&req(None, None, "")).is_ok_and(|f| f.is_empty()));
        assert!(filter(&req(Some(now - hour), Some(now), "pan+ic")).is_ok());
        let bad = message(filter(&req(None, None, "panic(")));
        assert!(
            bad.contains("grep \"panic(\" is not a valid regular expression"),
            "{bad}"
        );
        let long = message(filter(&req(None, None, &"a".repeat(MAX_GREP_LEN + 1))));
        assert!(long.contains("at most 4096"), "{long}");
        let backwards = message(filter(&req(Some(now), Some(now - hour), "")));
        assert!(backwards.contains("until ("), "{backwards}");
    }
}
