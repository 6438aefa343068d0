//! Nothing twice and nothing lost where several elements, forged ids or an older cluster's
//! listing could break it.

use super::*;

/// Waits until the gateway refused at least `count` hand-overs.
async fn refused_at_least(gateway: &TestGateway, worker: &WorkerProcess, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while gateway.refused() < count {
        assert!(
            Instant::now() < deadline,
            "refused only {}:\n{}",
            gateway.refused(),
            log_tail(worker)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn unseen(flags: Option<Vec<String>>) -> bool {
    flags.is_some_and(|f| !f.iter().any(|f| f == "Seen"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_one_element_refused_is_retried_for_that_element_only() {
    let user = "model13";
    clear_inbox(user).await;
    let gateway = TestGateway::start().await;
    let rest = CamundaRest::start().await;
    let pid = "model-partly";
    rest.deploy(
        pid,
        &Process::new(pid)
            .message_start("A_start", "partly-start", mailbox(user))
            .intermediate_catch(
                "B_wait",
                "partly-wait",
                "=caseId",
                mailbox(user).with("correlationKeyExpression", "=subject"),
            )
            .xml(),
    );
    let (worker, port) = start_worker(&gateway, &rest);
    wait_readyz(&worker, &port, "both elements", |b| {
        watching(b, pid, 1, "A_start") && watching(b, pid, 1, "B_wait")
    })
    .await;
    gateway.refuse_message(Some("partly-wait"));
    let id = new_id("partly");
    deliver(user, &mail(&id, "partly", "")).await;
    refused_at_least(&gateway, &worker, 2).await;
    assert!(
        unseen(flags_of(user, "INBOX", &id).await),
        "refused: untouched"
    );
    gateway.refuse_message(None);
    let published = gateway
        .wait_published(2, Duration::from_secs(30), with_id(&id))
        .await;
    assert_eq!(names(&published), ["partly-start", "partly-wait"]);
    wait_flags(user, "INBOX", &id, &["Seen"]).await;
    // The element that had it was not asked again (a CreateProcessInstance would start twice).
    assert_eq!(gateway.duplicates(), 0, "{}", log_tail(&worker));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_elements_catching_one_name_under_different_keys_both_get_the_mail() {
    let user = "model14";
    clear_inbox(user).await;
    let gateway = TestGateway::start().await;
    let rest = CamundaRest::start().await;
    let pid = "model-two-keys";
    rest.deploy(
        pid,
        &Process::new(pid)
            .intermediate_catch(
                "Catch_bySubject",
                "case-mail",
                "=caseId",
                mailbox(user).with("correlationKeyExpression", "=subject"),
            )
            .intermediate_catch(
                "Catch_bySender",
                "case-mail",
                "=customer",
                mailbox(user).with("correlationKeyExpression", "=fromAddress"),
            )
            .xml(),
    );
    let (worker, port) = start_worker(&gateway, &rest);
    wait_readyz(&worker, &port, "both catch events", |b| {
        watching(b, pid, 1, "Catch_bySubject") && watching(b, pid, 1, "Catch_bySender")
    })
    .await;
    let id = new_id("twokeys");
    deliver(user, &mail(&id, "case-7", "")).await;
    let published = gateway
        .wait_published(2, Duration::from_secs(30), |p| p.name == "case-mail")
        .await;
    let mut keys: Vec<&str> = published
        .iter()
        .map(|p| p.correlation_key.as_str())
        .collect();
    keys.sort();
    assert_eq!(keys, ["case-7", "customer@example.test"]);
    assert_ne!(published[0].message_id, published[1].message_id);
    assert!(published.iter().all(|p| p.message_id.contains(&id)));
    wait_flags(user, "INBOX", &id, &["Seen"]).await;
    assert_eq!(gateway.duplicates(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_reusing_another_mails_message_id_is_held_not_lost() {
    let user = "model15";
    clear_inbox(user).await;
    let gateway = TestGateway::start().await;
    let rest = CamundaRest::start().await;
    let pid = "model-forged";
    rest.deploy(
        pid,
        &Process::new(pid)
            .message_start("StartEvent_mail", "forged-start", mailbox(user))
            .xml(),
    );
    let (worker, port) = start_worker(&gateway, &rest);
    wait_readyz(&worker, &port, "the start event", |b| {
        watching(b, pid, 1, "StartEvent_mail")
    })
    .await;
    let id = new_id("forged");
    deliver(user, &mail(&id, "the real one", "")).await;
    gateway
        .wait_published(1, Duration::from_secs(30), with_id(&id))
        .await;
    wait_flags(user, "INBOX", &id, &["Seen"]).await;
    // Another mail with the same Message-ID: Zeebe answers ALREADY_EXISTS, which must not
    // pass for "Zeebe has it".
    deliver(user, &mail(&id, "the forged one", "")).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while gateway.duplicates() < 1 {
        assert!(Instant::now() < deadline, "{}", log_tail(&worker));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let by_subject = crate::support::mailbox::flags_by_header(user, "INBOX", "SUBJECT").await;
    let flags = by_subject.get("the forged one");
    assert!(
        flags.is_some_and(|f| !f.iter().any(|f| f.contains("Seen"))),
        "the second mail is held, untouched: {flags:?}\n{}",
        log_tail(&worker)
    );
    assert!(plain(&worker.logs()).contains("for another mail"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_lists_deleted_versions_still_serves_the_version_left() {
    let user = "model16";
    clear_inbox(user).await;
    let gateway = TestGateway::start().await;
    let rest = CamundaRest::start().await;
    rest.list_deleted();
    let pid = "model-listed";
    let version = |message: &str| {
        Process::new(pid)
            .message_start("StartEvent_mail", message, mailbox(user))
            .xml()
    };
    rest.deploy(pid, &version("listed-v1"));
    let (v2, _) = rest.deploy(pid, &version("listed-v2"));
    let (worker, port) = start_worker(&gateway, &rest);
    wait_readyz(&worker, &port, "version 2's start event", |b| {
        watching(b, pid, 2, "StartEvent_mail")
    })
    .await;
    rest.delete(v2);
    // Still listed by the search, but gone: version 1 is the latest again.
    wait_readyz(&worker, &port, "version 1's start event again", |b| {
        watching(b, pid, 1, "StartEvent_mail") && !watching(b, pid, 2, "StartEvent_mail")
    })
    .await;
    let id = new_id("listed");
    deliver(user, &mail(&id, "after the deletion", "")).await;
    let published = gateway
        .wait_published(1, Duration::from_secs(30), with_id(&id))
        .await;
    assert_eq!(published[0].name, "listed-v1");
}
