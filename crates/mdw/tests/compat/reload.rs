//! mDW's service after a reload: ListServices, GetService and GetServiceStatus show an
//! added service (with the version and enabled flag of the new file) and forget a
//! removed one.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use russell_api::mdw::russell as m;
use test_support::compat::{list_services, mdw};
use test_support::{Fixture, Svc};

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_get_follow_a_reload_that_adds_and_removes() {
    let (a, c) = (Svc::demo("a"), Svc::demo("c"));
    let f = Fixture::new(&[a.clone(), c.clone()], "");
    let _d = f.start();
    let header = {
        let text = std::fs::read_to_string(&f.config).unwrap();
        text[..text.find("[[services]]").unwrap()].to_string()
    };
    let write = |svcs: &[&Svc]| {
        let mut text = header.clone();
        for s in svcs {
            text.push_str(&s.toml());
        }
        std::fs::write(&f.config, text).unwrap();
    };
    let names = |infos: &[m::ServiceInfo]| -> Vec<String> {
        infos.iter().map(|i| i.name.clone()).collect()
    };
    tokio::task::block_in_place(|| f.wait_all_healthy(T));
    assert_eq!(names(&list_services(&f.addr).await), ["a", "c"]);

    // a's version changes, d comes (disabled), c goes.
    let mut a2 = a.clone();
    a2.extra = "version = \"2.0\"".into();
    let mut d = Svc::demo("d");
    d.extra = "version = \"1.5\"\nenabled = false".into();
    write(&[&a2, &d]);
    let out = tokio::task::block_in_place(|| f.mdw(&["reload"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let infos = list_services(&f.addr).await;
    assert_eq!(names(&infos), ["a", "d"]);
    let a_info = infos.iter().find(|i| i.name == "a").unwrap();
    assert_eq!(a_info.version, "2.0", "the new file's version");
    let d_info = infos.iter().find(|i| i.name == "d").unwrap();
    assert_eq!(d_info.version, "1.5");
    assert_eq!(d_info.metadata["enabled"], "false");

    let mut client = mdw(&f, None).await;
    let got = client
        .get_service(m::GetServiceRequest {
            id: d_info.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.name, "d");
    let gone = client
        .get_service(m::GetServiceRequest {
            id: "managed/c".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound, "{gone:?}");
    let status = client
        .get_service_status(m::GetServiceStatusRequest { name: "c".into() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
}
