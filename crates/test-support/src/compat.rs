//! Clients for mDW's `mdw.russell.RussellService` (generated from the project's proto) and
//! for v1 against a [`Fixture`], shared by the compat tests.

use russell_api::client::BearerAuth;
use russell_api::mdw::common as c;
use russell_api::mdw::russell as m;
use russell_api::mdw::russell::russell_service_client::RussellServiceClient;
use russell_api::pb;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::fixture::Fixture;

pub type Mdw = RussellServiceClient<InterceptedService<Channel, BearerAuth>>;

pub async fn mdw(f: &Fixture, token: Option<&str>) -> Mdw {
    let ch = russell_api::client::channel(&f.addr).await.unwrap();
    RussellServiceClient::with_interceptor(ch, BearerAuth::new(token).unwrap())
}

pub async fn v1(f: &Fixture, token: Option<&str>) -> russell_api::Client {
    let ch = russell_api::client::channel(&f.addr).await.unwrap();
    pb::russell_service_client::RussellServiceClient::with_interceptor(
        ch,
        BearerAuth::new(token).unwrap(),
    )
}

pub async fn v1_status(c: &mut russell_api::Client, f: &Fixture) -> pb::OrchestratorStatus {
    let s = c
        .get_orchestrator_status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    f.record(&serde_json::json!({"services": s.services.iter().map(|x| serde_json::json!({"pid": x.pid})).collect::<Vec<_>>()}));
    s
}

pub async fn mdw_status(c: &mut Mdw) -> m::OrchestratorStatusResponse {
    c.get_orchestrator_status(c::Empty {})
        .await
        .unwrap()
        .into_inner()
}

/// mDW's ListServices at `addr`, without a token.
pub async fn list_services(addr: &str) -> Vec<m::ServiceInfo> {
    let ch = russell_api::client::channel(addr).await.unwrap();
    RussellServiceClient::new(ch)
        .list_services(c::Empty {})
        .await
        .unwrap()
        .into_inner()
        .services
}
