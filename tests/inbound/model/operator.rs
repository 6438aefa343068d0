//! What the operator decides around the discovery: the identity it speaks to the REST API as,
//! which tenants the worker serves, and that a REST API away for a while leaves the running
//! watchers as they are.

use std::time::Duration;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_workers_tenants_are_served_and_a_rest_outage_stops_no_watcher() {
    let user = "model12";
    clear_inbox(user).await;
    let gateway = TestGateway::start().await;
    let rest = CamundaRest::start().await;
    let pid = "model-tenants";
    let process = |message: &str| {
        Process::new(pid)
            .message_start(
                "StartEvent_mail",
                message,
                mailbox(user).with("resultVariable", "email"),
            )
            .xml()
    };
    rest.require_basic("connectors", "rest-secret");
    rest.deploy_for_tenant("sales", pid, &process("sales-mail"));
    rest.deploy_for_tenant("hr", pid, &process("hr-mail"));
    let port = free_port();
    let url = rest.url();
    let mut env = vec![
        ("EMAIL_INBOUND_ONLY", "true"),
        ("EMAIL_INBOUND_FROM_MODELS", "true"),
        ("CAMUNDA_REST_ADDRESS", url.as_str()),
        ("EMAIL_INBOUND_DISCOVERY_INTERVAL", "PT0.2S"),
        ("CAMUNDA_TENANT_IDS", "sales"),
        ("CAMUNDA_AUTH_STRATEGY", "BASIC"),
        ("CAMUNDA_BASIC_AUTH_USERNAME", "connectors"),
        ("CAMUNDA_BASIC_AUTH_PASSWORD", "rest-secret"),
    ];
    env.extend(http_env(&port));
    let worker = WorkerProcess::start(&gateway.url(), &env);
    let ready = wait_readyz(&worker, &port, "the sales tenant's start event", |b| {
        watching(b, pid, 1, "StartEvent_mail")
    })
    .await;
    assert_eq!(
        served(&ready).len(),
        1,
        "the hr tenant's element is not served:\n{ready}"
    );

    let id = new_id("tenant");
    deliver(user, &mail(&id, "for sales", "")).await;
    let published = gateway
        .wait_published(1, Duration::from_secs(30), with_id(&id))
        .await;
    assert_eq!(published[0].name, "sales-mail");
    assert_eq!(published[0].tenant_id, "sales");
    wait_flags(user, "INBOX", &id, &["Seen"]).await;

    // Camunda's REST API away for many discovery rounds: the watcher goes on.
    let before = rest.searches();
    rest.fail_next(1_000);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(rest.searches() > before + 3, "the discovery kept asking");
    let during = readyz_now(&port).await;
    assert!(watching(&during, pid, 1, "StartEvent_mail"), "{during}");
    let id = new_id("outage");
    deliver(user, &mail(&id, "during the outage", "")).await;
    let published = gateway
        .wait_published(1, Duration::from_secs(30), with_id(&id))
        .await;
    assert_eq!(published[0].name, "sales-mail");
    rest.fail_next(0);
    let logs = plain(&worker.logs());
    assert_eq!(
        logs.matches("discovery of deployed processes failed")
            .count(),
        1,
        "one warning per outage, not one per round"
    );
}

async fn readyz_now(port: &str) -> String {
    readyz(port).await.unwrap_or_default()
}
