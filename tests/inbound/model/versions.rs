//! Versions and deletions: which elements of which deployed versions are served.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_replaces_the_message_start_event_of_the_old_one() {
    let user = "model2";
    clear_inbox(user).await;
    let gateway = TestGateway::start().await;
    let rest = CamundaRest::start().await;
    let pid = "model-versions";
    let version = |message: &str| {
        Process::new(pid)
            .message_start(
                "StartEvent_order",
                message,
                mailbox(user).with("resultVariable", "email"),
            )
            .xml()
    };
    rest.deploy(pid, &version("order-mail-v1"));
    let (worker, port) = start_worker(&gateway, &rest);
    wait_readyz(&worker, &port, "v1's start event", |b| {
        watching(b, pid, 1, "StartEvent_order")
    })
    .await;
    let first = new_id("v1");
    deliver(user, &mail(&first, "first order", "")).await;
    let published = gateway
        .wait_published(1, Duration::from_secs(30), with_id(&first))
        .await;
    assert_eq!(published[0].name, "order-mail-v1");
    wait_flags(user, "INBOX", &first, &["Seen"]).await;
    assert_eq!(rest.deploy(pid, &version("order-mail-v2")).1, 2);
    let ready = wait_readyz(&worker, &port, "v2's start event alone", |b| {
        watching(b, pid, 2, "StartEvent_order") && !served(b).iter().any(|s| s.version == 1)
    })
    .await;
    assert_eq!(served(&ready).len(), 1, "{ready}");
    let second = new_id("v2");
    deliver(user, &mail(&second, "second order", "")).await;
    gateway
        .wait_published(1, Duration::from_secs(30), with_id(&second))
        .await;
    wait_flags(user, "INBOX", &second, &["Seen"]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let of_second: Vec<Published> = gateway
        .published()
        .into_iter()
        .filter(with_id(&second))
        .collect();
    assert_eq!(names(&of_second), ["order-mail-v2"], "only under v2's name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_boundary_and_receive_elements_of_an_older_version_keep_their_mail() {
    let user = "model3";
    clear_inbox(user).await;
    let gateway = TestGateway::start().await;
    let rest = CamundaRest::start().await;
    let pid = "model-case";
    let v1 = Process::new(pid)
        .message_start("StartEvent_case", "case-opened-v1", mailbox(user))
        .intermediate_catch(
            "Event_reply",
            "case-reply",
            "=caseId",
            mailbox(user)
                .with("correlationKeyExpression", "=subject")
                .with("resultExpression", "={caseSubject: subject}"),
        )
        .boundary_on_user_task(
            "Task_review",
            "Event_customerWrote",
            "customer-wrote",
            "=caseId",
            mailbox(user)
                .with("correlationKeyExpression", "=subject")
                .with("resultVariable", "mail"),
        )
        .receive_task(
            "Task_confirmation",
            "confirmation",
            "=customer",
            mailbox(user)
                .with("correlationKeyExpression", "=fromAddress")
                .with("messageIdExpression", "=\"confirmation-\" + subject")
                .with("messageTtl", "PT10M"),
        );
    // v2 keeps only its start event.
    let v2 = Process::new(pid).message_start("StartEvent_case", "case-opened-v2", mailbox(user));
    rest.deploy(pid, &v1.xml());
    rest.deploy(pid, &v2.xml());
    let (worker, port) = start_worker(&gateway, &rest);
    let ready = wait_readyz(
        &worker,
        &port,
        "v1's waiting elements and v2's start",
        |b| {
            watching(b, pid, 1, "Event_reply")
                && watching(b, pid, 1, "Event_customerWrote")
                && watching(b, pid, 1, "Task_confirmation")
                && watching(b, pid, 2, "StartEvent_case")
        },
    )
    .await;
    assert!(
        !served(&ready)
            .iter()
            .any(|s| s.version == 1 && s.element == "StartEvent_case"),
        "an old version's start event is not served:\n{ready}"
    );
    let id = new_id("case");
    deliver(user, &mail(&id, "case-42", "")).await;
    gateway
        .wait_published(4, Duration::from_secs(30), |_| true)
        .await;
    wait_flags(user, "INBOX", &id, &["Seen"]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let published = gateway.published();
    assert_eq!(
        names(&published),
        [
            "case-opened-v2",
            "case-reply",
            "confirmation",
            "customer-wrote"
        ],
        "once per element, v1's start event never: {published:?}"
    );
    let by = |name: &str| {
        published
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .expect("published")
    };
    let start = by("case-opened-v2");
    assert_eq!(start.correlation_key, "");
    assert!(no_variables(&start.variables), "{}", start.variables);
    let reply = by("case-reply");
    assert_eq!(reply.correlation_key, "case-42");
    assert_eq!(reply.message_id, format!("<{id}>"));
    assert_eq!(reply.variables, json!({ "caseSubject": "case-42" }));
    let wrote = by("customer-wrote");
    assert_eq!(wrote.correlation_key, "case-42");
    assert_eq!(wrote.variables["mail"]["subject"], "case-42");
    assert_eq!(wrote.variables.as_object().map(|o| o.len()), Some(1));
    let confirmation = by("confirmation");
    assert_eq!(confirmation.correlation_key, "customer@example.test");
    assert_eq!(confirmation.message_id, "confirmation-case-42");
    assert_eq!(confirmation.time_to_live_ms, 600_000);
    assert!(
        no_variables(&confirmation.variables),
        "{}",
        confirmation.variables
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_process_stops_its_watcher_and_later_mail_stays_unseen() {
    let user = "model4";
    clear_inbox(user).await;
    let gateway = TestGateway::start().await;
    let rest = CamundaRest::start().await;
    let pid = "model-delete";
    let v1 = Process::new(pid)
        .message_start("StartEvent_intake", "intake-v1", mailbox(user))
        .intermediate_catch(
            "Event_followUp",
            "follow-up",
            "=caseId",
            mailbox(user).with("correlationKeyExpression", "=subject"),
        );
    let v2 = Process::new(pid).message_start("StartEvent_intake", "intake-v2", mailbox(user));
    rest.deploy(pid, &v1.xml());
    rest.deploy(pid, &v2.xml());
    let (worker, port) = start_worker(&gateway, &rest);
    wait_readyz(&worker, &port, "both versions' elements", |b| {
        watching(b, pid, 1, "Event_followUp") && watching(b, pid, 2, "StartEvent_intake")
    })
    .await;
    let before = new_id("before");
    deliver(user, &mail(&before, "before the deletion", "")).await;
    let published = gateway
        .wait_published(2, Duration::from_secs(30), with_id(&before))
        .await;
    assert_eq!(names(&published), ["follow-up", "intake-v2"]);
    wait_flags(user, "INBOX", &before, &["Seen"]).await;
    rest.delete_process(pid);
    let deleted = Instant::now();
    let ready = wait_readyz(&worker, &port, "no element and no model watcher", |b| {
        b.contains("HTTP/") && served(b).is_empty() && model_watchers(b).is_empty()
    })
    .await;
    assert!(
        deleted.elapsed() < Duration::from_secs(10),
        "stopped after {:?}:\n{ready}",
        deleted.elapsed()
    );
    let after = new_id("after");
    deliver(user, &mail(&after, "after the deletion", "")).await;
    stays_unseen_and_unpublished(user, &after, &gateway, Duration::from_secs(3)).await;
}
