//! Generates services.toml files for the benchmarks: N stand-in services, flat or as a
//! layered DAG, with optional readiness delay, http checks, restart settings, a watched
//! file per service and Russell's HTTP listener.
//!
//! The file follows the loader's format (README.md, "Configuration reference"): a `[russell]` table and
//! one `[[services]]` entry per service. Serialisation goes through `toml`, so quoting of
//! paths is never hand-rolled.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

/// The shape of one generated line-up.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Number of services.
    pub count: usize,
    /// Dependency levels; 1 = no dependencies at all.
    pub levels: usize,
    /// Dependencies of each service on the previous level (at most that level's size).
    pub fan_in: usize,
    /// `--ready-after` given to the stand-in: its ports open only after this delay.
    pub ready_after: Option<Duration>,
    /// Interval of an http check on `/health`; `None` = no health check.
    pub http_check: Option<Duration>,
    /// `restart_backoff`; `None` = the loader's default.
    pub restart_backoff: Option<Duration>,
    /// `max_retries`; `None` = the loader's default.
    pub max_retries: Option<u32>,
    /// Each service watches a file of its own (`watch = [<watch dir>/<short name>]`,
    /// default debounce); [`Env::deploy`](crate::scenario::Env::deploy) creates the files.
    pub watch: bool,
    /// Russell's HTTP listener (`[russell] http_listen`) on a free loopback port.
    pub http: bool,
}

impl Spec {
    /// `count` independent services that are ready at once, no checks, default restarts.
    pub fn flat(count: usize) -> Spec {
        Spec {
            count,
            levels: 1,
            fan_in: 0,
            ready_after: None,
            http_check: None,
            restart_backoff: None,
            max_retries: None,
            watch: false,
            http: false,
        }
    }

    /// The level (0-based) of service `index`: levels are as even as `count` allows.
    pub fn level_of(&self, index: usize) -> usize {
        index * self.levels.max(1) / self.count.max(1)
    }
}

/// One generated service.
#[derive(Debug, Clone, PartialEq)]
pub struct GenService {
    pub name: String,
    pub short_name: String,
    pub http_port: u16,
    pub level: usize,
    pub dependencies: Vec<String>,
    /// The file it watches, if the line-up watches files.
    pub watch_file: Option<PathBuf>,
}

/// A generated file and what it contains.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The TOML text.
    pub toml: String,
    /// The services, in file order.
    pub services: Vec<GenService>,
    /// Russell's HTTP listener, if the file sets one.
    pub http_listen: Option<SocketAddr>,
}

impl Generated {
    /// Every service's http port.
    pub fn ports(&self) -> Vec<u16> {
        self.services.iter().map(|s| s.http_port).collect()
    }
}

/// Where the generated Russell lives: its API address and state dir, and optionally its
/// HTTP listener and the folder of the services' watched files.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    pub listen: SocketAddr,
    pub state_dir: &'a Path,
    pub http_listen: Option<SocketAddr>,
    pub watch_dir: Option<&'a Path>,
}

impl<'a> Site<'a> {
    /// API address and state dir only (no HTTP listener, no watched files).
    pub fn new(listen: SocketAddr, state_dir: &'a Path) -> Site<'a> {
        Site {
            listen,
            state_dir,
            http_listen: None,
            watch_dir: None,
        }
    }
}

/// Errors in the arguments of [`generate`] (a harness bug, never user input).
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// Fewer ports than services.
    #[error("{ports} ports given for {services} services")]
    Ports { ports: usize, services: usize },
    /// No level, or more levels than services.
    #[error("{levels} levels asked for {services} services")]
    Levels { levels: usize, services: usize },
    /// TOML serialisation failed.
    #[error("cannot write the services file")]
    Toml(#[source] toml::ser::Error),
}

#[derive(Serialize)]
struct FileToml<'a> {
    russell: RussellToml,
    services: Vec<ServiceToml<'a>>,
}

#[derive(Serialize)]
struct RussellToml {
    listen: String,
    state_dir: String,
    autostart: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_listen: Option<String>,
}

#[derive(Serialize)]
struct ServiceToml<'a> {
    name: &'a str,
    short_name: &'a str,
    http_port: u16,
    command: Vec<String>,
    dependencies: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    restart_backoff: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_retries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    health_check: Option<HealthToml>,
    #[serde(skip_serializing_if = "Option::is_none")]
    watch: Option<[String; 1]>,
}

#[derive(Serialize)]
struct HealthToml {
    #[serde(rename = "type")]
    kind: &'static str,
    endpoint: &'static str,
    interval: String,
    timeout: String,
}

/// Formats a duration the way the config accepts it ("0s", "200ms", "10s").
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Builds the services file for `spec`. `standin` is the stand-in's program and leading
/// arguments (e.g. `["/…/mdw-demo"]` or `["/…/mdw", "demo"]`); `ports[i]` becomes service
/// i's http port. With `site.watch_dir`, service i watches `<watch_dir>/<short name>`.
pub fn generate(
    spec: &Spec,
    standin: &[String],
    ports: &[u16],
    site: &Site<'_>,
) -> Result<Generated, GenError> {
    if ports.len() < spec.count {
        return Err(GenError::Ports {
            ports: ports.len(),
            services: spec.count,
        });
    }
    if spec.levels == 0 || spec.levels > spec.count.max(1) {
        return Err(GenError::Levels {
            levels: spec.levels,
            services: spec.count,
        });
    }
    let mut by_level: Vec<Vec<String>> = vec![Vec::new(); spec.levels];
    let mut services = Vec::with_capacity(spec.count);
    for (i, &port) in ports.iter().enumerate().take(spec.count) {
        let level = spec.level_of(i);
        let short_name = format!("s{i:04}");
        let position = by_level[level].len();
        let dependencies = match level.checked_sub(1).map(|l| &by_level[l]) {
            Some(prev) if !prev.is_empty() => {
                let mut deps: Vec<String> = (0..spec.fan_in.min(prev.len()))
                    .map(|t| prev[(position + t) % prev.len()].clone())
                    .collect();
                deps.dedup();
                deps
            }
            _ => Vec::new(),
        };
        by_level[level].push(short_name.clone());
        services.push(GenService {
            name: format!("Bench {i:04}"),
            http_port: port,
            level,
            dependencies,
            watch_file: site.watch_dir.map(|d| d.join(&short_name)),
            short_name,
        });
    }
    let file = FileToml {
        russell: RussellToml {
            listen: site.listen.to_string(),
            state_dir: site.state_dir.display().to_string(),
            autostart: true,
            http_listen: site.http_listen.map(|a| a.to_string()),
        },
        services: services
            .iter()
            .map(|s| {
                let mut command = standin.to_vec();
                command.extend([
                    "--name".into(),
                    s.short_name.clone(),
                    "--http-port".into(),
                    s.http_port.to_string(),
                ]);
                if let Some(d) = spec.ready_after {
                    command.extend(["--ready-after".into(), fmt_duration(d)]);
                }
                ServiceToml {
                    name: &s.name,
                    short_name: &s.short_name,
                    http_port: s.http_port,
                    command,
                    dependencies: &s.dependencies,
                    restart_backoff: spec.restart_backoff.map(fmt_duration),
                    max_retries: spec.max_retries,
                    health_check: spec.http_check.map(|interval| HealthToml {
                        kind: "http",
                        endpoint: "/health",
                        interval: fmt_duration(interval),
                        timeout: fmt_duration(Duration::from_secs(3).min(interval / 2)),
                    }),
                    watch: s.watch_file.as_ref().map(|f| [f.display().to_string()]),
                }
            })
            .collect(),
    };
    let toml = toml::to_string(&file).map_err(GenError::Toml)?;
    Ok(Generated {
        toml,
        services,
        http_listen: site.http_listen,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn standin() -> Vec<String> {
        vec!["/opt/x y/mdw-demo".to_string()]
    }

    fn ports(n: usize) -> Vec<u16> {
        (0..n).map(|i| 20000 + i as u16).collect()
    }

    fn parse(g: &Generated) -> toml::Table {
        g.toml.parse::<toml::Table>().unwrap()
    }

    #[test]
    fn flat_file_has_every_service_with_its_port_and_no_dependencies() {
        let listen: SocketAddr = "127.0.0.1:9999".parse().unwrap();
        let g = generate(
            &Spec::flat(50),
            &standin(),
            &ports(50),
            &Site::new(listen, Path::new("/tmp/st")),
        )
        .unwrap();
        let t = parse(&g);
        let r = t["russell"].as_table().unwrap();
        assert_eq!(r["listen"].as_str(), Some("127.0.0.1:9999"));
        assert_eq!(r["state_dir"].as_str(), Some("/tmp/st"));
        assert_eq!(r["autostart"].as_bool(), Some(true));
        let services = t["services"].as_array().unwrap();
        assert_eq!(services.len(), 50);
        for (i, s) in services.iter().enumerate() {
            let s = s.as_table().unwrap();
            assert_eq!(s["http_port"].as_integer(), Some(20000 + i as i64));
            assert!(s["dependencies"].as_array().unwrap().is_empty());
            assert!(!s.contains_key("health_check"));
            assert!(!s.contains_key("restart_backoff"));
            let cmd: Vec<&str> = s["command"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(cmd[0], "/opt/x y/mdw-demo");
            assert!(cmd.contains(&"--http-port"));
            assert!(!cmd.contains(&"--ready-after"));
        }
        let names: HashSet<_> = g.services.iter().map(|s| &s.short_name).collect();
        assert_eq!(names.len(), 50);
    }

    #[test]
    fn dag_has_ten_even_levels_and_every_dependency_is_on_the_level_before() {
        let spec = Spec {
            levels: 10,
            fan_in: 2,
            ready_after: Some(Duration::from_millis(200)),
            http_check: Some(Duration::from_secs(10)),
            restart_backoff: Some(Duration::ZERO),
            max_retries: Some(1000),
            ..Spec::flat(200)
        };
        let listen: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let g = generate(
            &spec,
            &standin(),
            &ports(200),
            &Site::new(listen, Path::new("/s")),
        )
        .unwrap();
        let level: HashMap<_, _> = g
            .services
            .iter()
            .map(|s| (s.short_name.clone(), s.level))
            .collect();
        let mut per_level = vec![0; 10];
        for s in &g.services {
            per_level[s.level] += 1;
            if s.level == 0 {
                assert!(s.dependencies.is_empty());
            } else {
                assert_eq!(s.dependencies.len(), 2, "{s:?}");
                for d in &s.dependencies {
                    assert_eq!(level[d], s.level - 1, "{} -> {d}", s.short_name);
                }
            }
        }
        assert_eq!(per_level, vec![20; 10]);
        // every service of a level is needed by someone on the next one
        let needed: HashSet<_> = g.services.iter().flat_map(|s| &s.dependencies).collect();
        assert_eq!(needed.len(), 180);

        let t = parse(&g);
        let s = t["services"].as_array().unwrap()[30].as_table().unwrap();
        let hc = s["health_check"].as_table().unwrap();
        assert_eq!(hc["type"].as_str(), Some("http"));
        assert_eq!(hc["endpoint"].as_str(), Some("/health"));
        assert_eq!(hc["interval"].as_str(), Some("10s"));
        assert_eq!(hc["timeout"].as_str(), Some("3s"));
        assert_eq!(s["restart_backoff"].as_str(), Some("0s"));
        assert_eq!(s["max_retries"].as_integer(), Some(1000));
        let cmd = s["command"].as_array().unwrap();
        assert!(cmd.iter().any(|v| v.as_str() == Some("200ms")));
    }

    #[test]
    fn bad_arguments_are_refused() {
        let listen: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let e = generate(
            &Spec::flat(3),
            &standin(),
            &ports(2),
            &Site::new(listen, Path::new("/s")),
        );
        assert!(matches!(e, Err(GenError::Ports { .. })));
        let spec = Spec {
            levels: 4,
            ..Spec::flat(3)
        };
        let e = generate(
            &spec,
            &standin(),
            &ports(3),
            &Site::new(listen, Path::new("/s")),
        );
        assert!(matches!(e, Err(GenError::Levels { .. })));
    }

    #[test]
    fn the_real_loader_accepts_every_generated_line_up() {
        let listen: SocketAddr = "127.0.0.1:9999".parse().unwrap();
        let dag = Spec {
            levels: 10,
            fan_in: 2,
            ready_after: Some(Duration::from_millis(200)),
            http_check: Some(Duration::from_secs(10)),
            ..Spec::flat(200)
        };
        let crash = Spec {
            restart_backoff: Some(Duration::ZERO),
            max_retries: Some(1000),
            ..Spec::flat(20)
        };
        for spec in [Spec::flat(1000), dag, crash] {
            let g = generate(
                &spec,
                &standin(),
                &ports(spec.count),
                &Site::new(listen, Path::new("/tmp/st")),
            )
            .unwrap();
            let cfg = russell_config::parse(
                &g.toml,
                Path::new("/tmp/services.toml"),
                Path::new("/bin/mdw"),
            )
            .unwrap_or_else(|e| panic!("{e}\n{}", g.toml));
            assert_eq!(cfg.services.len(), spec.count);
            assert_eq!(cfg.russell.listen, listen);
            let s = &cfg.services[spec.count - 1];
            assert_eq!(s.http_port, Some(g.services[spec.count - 1].http_port));
            assert_eq!(s.dependencies, g.services[spec.count - 1].dependencies);
            if let Some(b) = spec.restart_backoff {
                assert_eq!(s.restart_backoff, b);
            }
            if spec.http_check.is_some() {
                assert!(matches!(
                    s.health_check.probe,
                    russell_config::Probe::Http { .. }
                ));
                assert_eq!(s.health_check.interval, Duration::from_secs(10));
            } else {
                assert_eq!(s.health_check.probe, russell_config::Probe::None);
            }
        }
    }

    #[test]
    fn watched_files_and_the_http_listener_reach_the_real_loader() {
        let listen: SocketAddr = "127.0.0.1:9999".parse().unwrap();
        let http: SocketAddr = "127.0.0.1:9998".parse().unwrap();
        let site = Site {
            http_listen: Some(http),
            watch_dir: Some(Path::new("/tmp/w d")),
            ..Site::new(listen, Path::new("/tmp/st"))
        };
        let g = generate(&Spec::flat(3), &standin(), &ports(3), &site).unwrap();
        assert_eq!(g.http_listen, Some(http));
        let cfg = russell_config::parse(
            &g.toml,
            Path::new("/tmp/services.toml"),
            Path::new("/bin/mdw"),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", g.toml));
        assert_eq!(cfg.russell.http_listen, Some(http));
        for (s, gen_s) in cfg.services.iter().zip(&g.services) {
            let file = Path::new("/tmp/w d").join(&gen_s.short_name);
            assert_eq!(gen_s.watch_file.as_deref(), Some(file.as_path()));
            assert_eq!(s.watch, vec![file]);
        }
    }

    #[test]
    fn durations_are_written_in_config_syntax() {
        assert_eq!(fmt_duration(Duration::ZERO), "0s");
        assert_eq!(fmt_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(fmt_duration(Duration::from_secs(10)), "10s");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1500ms");
    }
}
