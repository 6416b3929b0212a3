//! The gRPC health endpoint: tonic-health's `grpc.health.v1.Health` on a pre-bound listener.

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::health_server::{Health, HealthServer};

/// Serves `service` until the runtime is dropped; a server error is printed to stderr.
/// TCP_NODELAY: without it, Nagle's algorithm delays small HTTP/2 frames by milliseconds.
pub(crate) async fn serve(service: HealthServer<impl Health>, listener: TcpListener) {
    let result = tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)))
        .await;
    if let Err(err) = result {
        crate::say_err(&format!("grpc server stopped: {err}"));
    }
}
