//! mDW's `mdw.russell.RussellService` with bad input on every method that takes any: each
//! call gets its code and a message, and nothing changes (PIDs, states, registrations,
//! pipelines).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use russell_api::mdw::common as c;
use russell_api::mdw::russell as m;
use test_support::compat::{mdw, v1, v1_status};
use test_support::{Fixture, Svc};
use tonic::Code;

/// Every method that takes input, with bad input: the code, a message, and no change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_code_and_a_message_and_changes_nothing() {
    let f = Fixture::new(&[Svc::demo("alpha")], "");
    let _d = f.start();
    f.wait_all_healthy(Duration::from_secs(20));
    let mut old = v1(&f, None).await;
    let mut c = mdw(&f, None).await;
    let before = v1_status(&mut old, &f).await;
    let reg = c
        .register(m::RegisterRequest {
            name: "ext".into(),
            address: "localhost".into(),
            port: 7000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    let code = |r: Result<(), tonic::Status>| match r {
        Ok(()) => None,
        Err(s) => {
            assert!(!s.message().is_empty(), "{s:?}");
            Some(s.code())
        }
    };
    let register = |name: &str, address: &str, port: i32, tags: Vec<String>| m::RegisterRequest {
        name: name.into(),
        address: address.into(),
        port,
        tags,
        ..Default::default()
    };
    let step = |id: &str, deps: &[&str]| m::PipelineStep {
        id: id.into(),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        ..Default::default()
    };
    let pipeline = |steps: Vec<m::PipelineStep>| m::CreatePipelineRequest {
        id: "p".into(),
        steps,
        ..Default::default()
    };
    let ia = Some(Code::InvalidArgument);
    let nf = Some(Code::NotFound);
    let cases: Vec<(&str, Option<Code>, Option<Code>)> = vec![
        (
            "Register empty name",
            code(
                c.register(register("", "localhost", 1, vec![]))
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "Register control chars",
            code(
                c.register(register("a\nb", "localhost", 1, vec![]))
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "Register empty address",
            code(c.register(register("x", " ", 1, vec![])).await.map(|_| ())),
            ia,
        ),
        (
            "Register port -1",
            code(
                c.register(register("x", "localhost", -1, vec![]))
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "Register port 70000",
            code(
                c.register(register("x", "localhost", 70_000, vec![]))
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "Register 65 tags",
            code(
                c.register(register("x", "localhost", 1, vec!["t".into(); 65]))
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "Deregister empty",
            code(
                c.deregister(m::DeregisterRequest { id: String::new() })
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "Deregister unknown",
            code(
                c.deregister(m::DeregisterRequest {
                    id: "ghost-1".into(),
                })
                .await
                .map(|_| ()),
            ),
            nf,
        ),
        (
            "Deregister managed",
            code(
                c.deregister(m::DeregisterRequest {
                    id: "managed/alpha".into(),
                })
                .await
                .map(|_| ()),
            ),
            Some(Code::FailedPrecondition),
        ),
        (
            "Heartbeat empty",
            code(
                c.heartbeat(m::HeartbeatRequest { id: String::new() })
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "Discover nothing",
            code(c.discover(m::DiscoverRequest::default()).await.map(|_| ())),
            ia,
        ),
        (
            "Discover control chars",
            code(
                c.discover(m::DiscoverRequest {
                    name: "\u{7f}".into(),
                    tags: vec![],
                })
                .await
                .map(|_| ()),
            ),
            ia,
        ),
        (
            "GetService empty",
            code(
                c.get_service(m::GetServiceRequest { id: String::new() })
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "GetService unknown",
            code(
                c.get_service(m::GetServiceRequest { id: "ghost".into() })
                    .await
                    .map(|_| ()),
            ),
            nf,
        ),
        (
            "StartService empty",
            code(
                c.start_service(m::StartServiceRequest {
                    name: String::new(),
                })
                .await
                .map(|_| ()),
            ),
            ia,
        ),
        (
            "StartService unknown",
            code(
                c.start_service(m::StartServiceRequest {
                    name: "ghost".into(),
                })
                .await
                .map(|_| ()),
            ),
            nf,
        ),
        (
            "StopService empty",
            code(
                c.stop_service(m::StopServiceRequest {
                    name: String::new(),
                    force: true,
                })
                .await
                .map(|_| ()),
            ),
            ia,
        ),
        (
            "StopService unknown",
            code(
                c.stop_service(m::StopServiceRequest {
                    name: "ghost".into(),
                    force: true,
                })
                .await
                .map(|_| ()),
            ),
            nf,
        ),
        (
            "RestartService empty",
            code(
                c.restart_service(m::RestartServiceRequest {
                    name: String::new(),
                })
                .await
                .map(|_| ()),
            ),
            ia,
        ),
        (
            "RestartService unknown",
            code(
                c.restart_service(m::RestartServiceRequest {
                    name: "ghost".into(),
                })
                .await
                .map(|_| ()),
            ),
            nf,
        ),
        (
            "GetServiceStatus empty",
            code(
                c.get_service_status(m::GetServiceStatusRequest {
                    name: String::new(),
                })
                .await
                .map(|_| ()),
            ),
            ia,
        ),
        (
            "GetServiceStatus unknown",
            code(
                c.get_service_status(m::GetServiceStatusRequest {
                    name: "ghost".into(),
                })
                .await
                .map(|_| ()),
            ),
            nf,
        ),
        (
            "GetErrors limit -1",
            code(
                c.get_errors(m::GetErrorsRequest { limit: -1 })
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "CreatePipeline empty step id",
            code(
                c.create_pipeline(pipeline(vec![step("", &[])]))
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "CreatePipeline twice the same step",
            code(
                c.create_pipeline(pipeline(vec![step("a", &[]), step("a", &[])]))
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "CreatePipeline unknown depends_on",
            code(
                c.create_pipeline(pipeline(vec![step("a", &["zz"])]))
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "CreatePipeline cycle",
            code(
                c.create_pipeline(pipeline(vec![step("a", &["b"]), step("b", &["a"])]))
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "GetPipeline empty",
            code(
                c.get_pipeline(m::GetPipelineRequest { id: String::new() })
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "GetPipeline unknown",
            code(
                c.get_pipeline(m::GetPipelineRequest { id: "p".into() })
                    .await
                    .map(|_| ()),
            ),
            nf,
        ),
        (
            "DeletePipeline unknown",
            code(
                c.delete_pipeline(m::DeletePipelineRequest { id: "p".into() })
                    .await
                    .map(|_| ()),
            ),
            nf,
        ),
        (
            "ExecutePipeline unknown",
            code(
                c.execute_pipeline(m::ExecutePipelineRequest {
                    pipeline_id: "p".into(),
                    input: String::new(),
                })
                .await
                .map(|_| ()),
            ),
            nf,
        ),
    ];
    for (what, got, want) in &cases {
        assert_eq!(got, want, "{what}");
    }
    // An unknown id is no error for a heartbeat: mDW's services re-register on this answer.
    let hb = c
        .heartbeat(m::HeartbeatRequest {
            id: "ghost-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!hb.acknowledged);

    // Nothing changed: same PIDs and states, the one registration, no pipeline.
    let after = v1_status(&mut old, &f).await;
    for (x, y) in before.services.iter().zip(&after.services) {
        assert_eq!((x.pid, &x.state), (y.pid, &y.state));
    }
    let list = c.list_services(c::Empty {}).await.unwrap().into_inner();
    assert_eq!(list.total, 2, "{list:?}");
    assert!(list.services.iter().any(|s| s.id == reg.id));
    let pipelines = c.list_pipelines(c::Empty {}).await.unwrap().into_inner();
    assert!(pipelines.pipelines.is_empty());
}
