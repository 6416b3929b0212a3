//! Russell's wire contract: generated gRPC types, a typed client, and (feature `server`)
//! the server over russell-core.

/// Generated from `proto/mdw/russell/v1/russell.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("mdw.russell.v1");

    /// Encoded descriptor set, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/russell_descriptor.bin"));
}
