//! The `[russell]` and `[logs]` tables.

use std::net::SocketAddr;

use super::Context;
use super::fields::{count, resolve_path};
use crate::error::{Collector, Subject};
use crate::model::{LogSettings, RussellSettings};
use crate::raw::{NumOrText, RawLogs, RawRussell};

pub(super) fn russell(
    raw: Option<&RawRussell>,
    ctx: &Context<'_>,
    c: &mut Collector<'_>,
) -> RussellSettings {
    let empty = RawRussell::default();
    let raw = raw.unwrap_or(&empty);
    let default_listen = SocketAddr::from(([127, 0, 0, 1], 9100));
    let listen = match &raw.listen {
        None => default_listen,
        Some(v) => match v.get_ref().trim().parse::<SocketAddr>() {
            Ok(addr) if addr.port() != 0 => addr,
            Ok(_) => {
                c.push(
                    Some(v.span()),
                    &Subject::File,
                    "russell.listen",
                    "listen port 0 would pick a random port that clients cannot find",
                    "use a fixed port, e.g. listen = \"127.0.0.1:9100\"",
                );
                default_listen
            }
            Err(_) => {
                c.push(
                    Some(v.span()),
                    &Subject::File,
                    "russell.listen",
                    format!("'{}' is not an IP address with a port", v.get_ref()),
                    "write it like listen = \"127.0.0.1:9100\" (an IP address, not a host name)",
                );
                default_listen
            }
        },
    };
    RussellSettings {
        listen,
        state_dir: raw.state_dir.as_ref().map_or_else(
            || ctx.file_dir.join(".russell"),
            |v| resolve_path(&ctx.dir, v.get_ref()),
        ),
        token_file: raw
            .token_file
            .as_ref()
            .map(|v| resolve_path(&ctx.dir, v.get_ref())),
        autostart: raw.autostart.as_ref().is_none_or(|v| *v.get_ref()),
        watch_config: raw.watch_config.as_ref().is_some_and(|v| *v.get_ref()),
        http_listen: http_listen(raw, listen, c),
    }
}

/// `http_listen`: an IP address with a port, or a bare port on 127.0.0.1; not port 0 and
/// not Russell's gRPC `listen` port.
fn http_listen(raw: &RawRussell, listen: SocketAddr, c: &mut Collector<'_>) -> Option<SocketAddr> {
    let v = raw.http_listen.as_ref()?;
    let text = v.get_ref().trim();
    let parsed = text.parse::<SocketAddr>().ok().or_else(|| {
        text.parse::<u16>()
            .ok()
            .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
    });
    let problem = match parsed {
        None => format!("'{text}' is not an IP address with a port, nor a port"),
        Some(addr) if addr.port() == 0 => {
            "http_listen port 0 would pick a random port that clients cannot find".to_owned()
        }
        Some(addr) if addr.port() == listen.port() => format!(
            "http_listen uses port {}, which Russell's gRPC listen address {listen} already uses",
            addr.port()
        ),
        Some(addr) => return Some(addr),
    };
    c.push(
        Some(v.span()),
        &Subject::File,
        "russell.http_listen",
        problem,
        "write it like http_listen = \"127.0.0.1:9101\" (an IP address and a free port), \
         or leave it out to keep the HTTP listener off",
    );
    None
}

pub(super) fn logs(raw: Option<&RawLogs>, ctx: &Context<'_>, c: &mut Collector<'_>) -> LogSettings {
    let empty = RawLogs::default();
    let raw = raw.unwrap_or(&empty);
    let default_size = 10 * 1024 * 1024;
    let max_file_size = match &raw.max_file_size {
        None => default_size,
        Some(v) => match parse_size(v.get_ref()) {
            Some(size) if size >= 1024 => size,
            _ => {
                c.push(
                    Some(v.span()),
                    &Subject::File,
                    "logs.max_file_size",
                    format!("'{}' is not a size of at least 1KiB", show(v.get_ref())),
                    "write a number of bytes or a size like \"512KiB\", \"10MiB\", \"1GiB\"",
                );
                default_size
            }
        },
    };
    let max_files = count(
        c,
        raw.max_files.as_ref(),
        5,
        (0, 1000),
        &Subject::File,
        "logs.max_files",
    );
    let tail_lines = count(
        c,
        raw.tail_lines.as_ref(),
        1000,
        (1, 1_000_000),
        &Subject::File,
        "logs.tail_lines",
    );
    LogSettings {
        dir: raw
            .dir
            .as_ref()
            .map(|v| resolve_path(&ctx.dir, v.get_ref())),
        max_file_size,
        max_files,
        tail_lines: tail_lines as usize,
    }
}

pub(super) fn show(v: &NumOrText) -> String {
    match v {
        NumOrText::Num(n) => n.to_string(),
        NumOrText::Text(t) => t.clone(),
    }
}

/// Bytes in a size like 1048576, "512KiB", "10MiB", "1GB".
pub(super) fn parse_size(v: &NumOrText) -> Option<u64> {
    let text = match v {
        NumOrText::Num(n) => return u64::try_from(*n).ok(),
        NumOrText::Text(t) => t.trim(),
    };
    let split = text
        .find(|ch: char| !ch.is_ascii_digit())
        .unwrap_or(text.len());
    let number: u64 = text[..split].parse().ok()?;
    let factor: u64 = match text[split..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        _ => return None,
    };
    number.checked_mul(factor)
}
