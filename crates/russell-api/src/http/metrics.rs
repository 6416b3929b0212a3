//! `/metrics`: Russell's state in the Prometheus text format (0.0.4), encoded by
//! prometheus-client from one snapshot at scrape time. Nothing is kept between scrapes but
//! what the core and the API gate count anyway; a scrape reads one snapshot (waking the
//! CPU/memory sampler like any status read) and `/proc/self`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use russell_core::{ExternalState, ServiceState, Snapshot};

use crate::server::gate::CallCounts;

/// The content type of the exposition.
pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Every state a service can be in, for `mdw_service_state`.
const STATES: [ServiceState; 8] = [
    ServiceState::Stopped,
    ServiceState::Waiting,
    ServiceState::Starting,
    ServiceState::Running,
    ServiceState::Unhealthy,
    ServiceState::Restarting,
    ServiceState::Stopping,
    ServiceState::Failed,
];

/// What one scrape shows.
#[derive(Debug)]
pub(crate) struct Scrape {
    pub snapshot: Arc<Snapshot>,
    pub calls: CallCounts,
}

/// The exposition of `scrape`.
pub(crate) fn render(scrape: Scrape) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    let mut out = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail; an encoder error would only cut the output.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

type Result = std::result::Result<(), std::fmt::Error>;

fn gauge(m: &mut MetricEncoder<'_>, labels: &[(&str, &str)], v: f64) -> Result {
    m.encode_family(&labels)?.encode_gauge(&v)
}

fn counter(m: &mut MetricEncoder<'_>, labels: &[(&str, &str)], v: f64) -> Result {
    m.encode_family(&labels)?
        .encode_counter::<NoLabelSet, f64, f64>(&v, None)
}

fn seconds_since_epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result {
        self.services(&mut enc)?;
        self.probes(&mut enc)?;
        self.externals(&mut enc)?;
        self.russell(&mut enc)?;
        self.api(&mut enc)?;
        process(&mut enc)
    }
}

impl Scrape {
    fn services(&self, enc: &mut DescriptorEncoder) -> Result {
        let svcs = &self.snapshot.services;
        let mut m = enc.encode_descriptor(
            "mdw_service_up",
            "1 when the service is running and healthy, else 0.",
            None,
            MetricType::Gauge,
        )?;
        for s in svcs {
            let up = s.state == ServiceState::Running && s.healthy;
            gauge(
                &mut m,
                &[("service", &s.short_name)],
                f64::from(u8::from(up)),
            )?;
        }
        let mut m = enc.encode_descriptor(
            "mdw_service_state",
            "1 for the state the service is in, 0 for the others.",
            None,
            MetricType::Gauge,
        )?;
        for s in svcs {
            for st in STATES {
                let v = f64::from(u8::from(s.state == st));
                gauge(
                    &mut m,
                    &[("service", &s.short_name), ("state", st.as_str())],
                    v,
                )?;
            }
        }
        let mut m = enc.encode_descriptor(
            "mdw_service_restarts",
            "Automatic restarts of the service since its counter last reset.",
            None,
            MetricType::Counter,
        )?;
        for s in svcs {
            counter(
                &mut m,
                &[("service", &s.short_name)],
                f64::from(s.restart_count),
            )?;
        }
        let mut m = enc.encode_descriptor(
            "mdw_service_last_exit_code",
            "Exit code of the service's last process that exited by itself.",
            None,
            MetricType::Gauge,
        )?;
        for s in svcs {
            if let Some(code) = s.last_exit_code {
                gauge(&mut m, &[("service", &s.short_name)], f64::from(code))?;
            }
        }
        let mut m = enc.encode_descriptor(
            "mdw_service_cpu_seconds",
            "CPU time used by the service's process group, sampled.",
            None,
            MetricType::Counter,
        )?;
        for s in svcs.iter().filter(|s| s.pid.is_some()) {
            counter(&mut m, &[("service", &s.short_name)], s.cpu_seconds)?;
        }
        let mut m = enc.encode_descriptor(
            "mdw_service_resident_memory_bytes",
            "Resident memory of the service's process group, sampled.",
            None,
            MetricType::Gauge,
        )?;
        for s in svcs.iter().filter(|s| s.pid.is_some()) {
            gauge(&mut m, &[("service", &s.short_name)], s.rss_bytes as f64)?;
        }
        let mut m = enc.encode_descriptor(
            "mdw_service_start_duration_seconds",
            "Time of the service's last start, from the request until healthy.",
            None,
            MetricType::Gauge,
        )?;
        for s in svcs {
            let t = s.timing;
            if let (Some(from), Some(to)) = (t.requested_at, t.healthy_at)
                && let Ok(took) = to.duration_since(from)
            {
                gauge(&mut m, &[("service", &s.short_name)], took.as_secs_f64())?;
            }
        }
        Ok(())
    }

    fn probes(&self, enc: &mut DescriptorEncoder) -> Result {
        let readings: Vec<_> = self
            .snapshot
            .services
            .iter()
            .map(|s| (s.short_name.as_str(), s.probes.read()))
            .collect();
        let mut m = enc.encode_descriptor(
            "mdw_service_probe_duration_seconds",
            "Duration of the service's health probes.",
            None,
            MetricType::Histogram,
        )?;
        for (name, r) in &readings {
            m.encode_family(&[("service", *name)])?
                .encode_histogram::<NoLabelSet>(r.sum_seconds, r.count, &r.buckets, None)?;
        }
        let mut m = enc.encode_descriptor(
            "mdw_service_probe_failures",
            "Failed health probes of the service.",
            None,
            MetricType::Counter,
        )?;
        for (name, r) in &readings {
            counter(&mut m, &[("service", name)], r.failures as f64)?;
        }
        Ok(())
    }

    fn externals(&self, enc: &mut DescriptorEncoder) -> Result {
        let mut m = enc.encode_descriptor(
            "mdw_external_state",
            "1 for the state the external dependency is in, 0 for the others.",
            None,
            MetricType::Gauge,
        )?;
        for e in &self.snapshot.externals {
            for (st, name) in [
                (ExternalState::Unknown, "unknown"),
                (ExternalState::Healthy, "healthy"),
                (ExternalState::Unhealthy, "unhealthy"),
            ] {
                let v = f64::from(u8::from(e.state == st));
                gauge(&mut m, &[("external", &e.short_name), ("state", name)], v)?;
            }
        }
        Ok(())
    }

    fn russell(&self, enc: &mut DescriptorEncoder) -> Result {
        let mut m = enc.encode_descriptor(
            "mdw_build",
            "Russell's version; the value is always 1.",
            None,
            MetricType::Info,
        )?;
        m.encode_info(&[("version", env!("CARGO_PKG_VERSION"))])?;
        let mut m = enc.encode_descriptor(
            "mdw_russell_start_time_seconds",
            "When this Russell started, in seconds since the Unix epoch.",
            None,
            MetricType::Gauge,
        )?;
        m.encode_gauge(&seconds_since_epoch(self.snapshot.started_at))
    }

    fn api(&self, enc: &mut DescriptorEncoder) -> Result {
        let mut m = enc.encode_descriptor(
            "mdw_api_requests",
            "Answered API requests by protocol, method and code (grpc-status or HTTP status).",
            None,
            MetricType::Counter,
        )?;
        let mut rows: Vec<(&str, &str, u16, u64)> = Vec::new();
        for (protocol, methods) in &self.calls {
            for (method, codes) in methods {
                for (code, n) in codes {
                    rows.push((protocol, method, *code, *n));
                }
            }
        }
        rows.sort_unstable();
        for (protocol, method, code, n) in rows {
            let code = code.to_string();
            let labels = [("protocol", protocol), ("method", method), ("code", &code)];
            counter(&mut m, &labels, n as f64)?;
        }
        Ok(())
    }
}

/// Russell's own process: CPU, memory, threads, open files (from `/proc/self`).
fn process(enc: &mut DescriptorEncoder) -> Result {
    let Ok(me) = procfs::process::Process::myself() else {
        return Ok(());
    };
    if let Ok(stat) = me.stat() {
        use procfs::WithCurrentSystemInfo;
        let tps = procfs::ticks_per_second() as f64;
        let cpu = (stat.utime + stat.stime) as f64 / tps.max(1.0);
        let rows = [
            (
                "process_cpu_seconds",
                "CPU time Russell used.",
                MetricType::Counter,
                cpu,
            ),
            (
                "process_resident_memory_bytes",
                "Russell's resident memory.",
                MetricType::Gauge,
                stat.rss_bytes().get() as f64,
            ),
            (
                "process_threads",
                "Russell's threads.",
                MetricType::Gauge,
                stat.num_threads as f64,
            ),
        ];
        for (name, help, kind, v) in rows {
            let mut m = enc.encode_descriptor(name, help, None, kind)?;
            if kind == MetricType::Counter {
                m.encode_counter::<NoLabelSet, f64, f64>(&v, None)?;
            } else {
                m.encode_gauge(&v)?;
            }
        }
    }
    if let Ok(fds) = me.fd_count() {
        let mut m = enc.encode_descriptor(
            "process_open_fds",
            "File descriptors Russell has open.",
            None,
            MetricType::Gauge,
        )?;
        m.encode_gauge(&(fds as f64))?;
    }
    Ok(())
}
