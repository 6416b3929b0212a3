//! Russell's wire contract: generated gRPC types, a typed client, and (feature `server`)
//! the server over russell-core plus the daemon that hosts it.

/// Generated from `proto/mdw/russell/v1/russell.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("mdw.russell.v1");

    /// Encoded descriptor set, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/russell_descriptor.bin"));
}

/// Generated from `proto/mdw/russell/russell.proto` and `proto/mdw/common/common.proto`:
/// mDW's own RussellService contract (package `mdw.russell`), served next to v1.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod mdw {
    /// Package `mdw.common`.
    pub mod common {
        tonic::include_proto!("mdw.common");
    }
    /// Package `mdw.russell`.
    pub mod russell {
        tonic::include_proto!("mdw.russell");
    }
}

pub mod client;
#[cfg(feature = "server")]
pub mod convert;
#[cfg(feature = "server")]
pub mod daemon;
#[cfg(feature = "server")]
pub mod http;
pub mod json;
#[cfg(feature = "server")]
mod reload;
#[cfg(feature = "server")]
pub mod server;
pub mod state;

pub use client::{Client, ClientError, connect};
/// Re-exported for clients that read the wire's Timestamp and Duration.
pub use prost_types;
