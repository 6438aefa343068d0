//! One mailbox, several elements or replicas: activation, consumption, refusal.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_elements_on_one_mailbox_share_a_watcher_and_each_gets_the_mail() {
    let user = "model5";
    clear_inbox(user).await;
    let gateway = TestGateway::start().await;
    let rest = CamundaRest::start().await;
    let pid = "model-shared";
    let process = Process::new(pid)
        .message_start(
            "StartEvent_ticket",
            "ticket-new",
            mailbox(user)
                .with("activationCondition", "=contains(subject, \"ticket\")")
                .with("resultVariable", "email"),
        )
        .intermediate_catch(
            "Event_ticketUpdate",
            "ticket-update",
            "=ticketId",
            mailbox(user)
                .with(
                    "activationCondition",
                    "=fromAddress = \"customer@example.test\"",
                )
                .with("correlationKeyExpression", "=subject")
                .with("resultVariable", "email"),
        );
    rest.deploy(pid, &process.xml());
    let (worker, port) = start_worker(&gateway, &rest);
    let ready = wait_readyz(&worker, &port, "both elements", |b| {
        watching(b, pid, 1, "StartEvent_ticket") && watching(b, pid, 1, "Event_ticketUpdate")
    })
    .await;
    let watchers = model_watchers(&ready);
    assert_eq!(watchers.len(), 1, "one mailbox, one watcher:\n{ready}");
    assert!(
        served(&ready).iter().all(|s| s.watcher == watchers[0].0),
        "{ready}"
    );
    let id = new_id("shared");
    deliver(user, &mail(&id, "ticket 7", "")).await;
    gateway
        .wait_published(2, Duration::from_secs(30), with_id(&id))
        .await;
    wait_flags(user, "INBOX", &id, &["Seen"]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let published = gateway.published();
    assert_eq!(
        names(&published),
        ["ticket-new", "ticket-update"],
        "once each"
    );
    let key = |name: &str| {
        published
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.correlation_key.clone())
    };
    assert_eq!(key("ticket-new").as_deref(), Some(""));
    assert_eq!(key("ticket-update").as_deref(), Some("ticket 7"));
    assert!(
        published
            .iter()
            .all(|p| p.variables["email"]["subject"] == "ticket 7")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_publish_each_mail_once_per_element() {
    let user = "model6";
    clear_inbox(user).await;
    let gateway = TestGateway::start().await;
    let rest = CamundaRest::start().await;
    let pid = "model-replicas";
    let process = Process::new(pid)
        .message_start("StartEvent_r", "replica-start", mailbox(user))
        .intermediate_catch(
            "Event_r",
            "replica-reply",
            "=subject",
            mailbox(user).with("correlationKeyExpression", "=subject"),
        );
    rest.deploy(pid, &process.xml());
    let (first, first_port) = start_worker(&gateway, &rest);
    let (second, second_port) = start_worker(&gateway, &rest);
    for (worker, port) in [(&first, &first_port), (&second, &second_port)] {
        wait_readyz(worker, port, "both elements", |b| {
            watching(b, pid, 1, "StartEvent_r") && watching(b, pid, 1, "Event_r")
        })
        .await;
    }
    let tag = unique("replicas");
    let ids: Vec<String> = (0..4).map(|i| format!("{tag}-{i}@example.test")).collect();
    for (i, id) in ids.iter().enumerate() {
        deliver(user, &mail(id, &format!("replica {i}"), "")).await;
    }
    gateway
        .wait_published(ids.len() * 2, Duration::from_secs(40), |_| true)
        .await;
    for id in &ids {
        wait_flags(user, "INBOX", id, &["Seen"]).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let published = gateway.published();
    for (i, id) in ids.iter().enumerate() {
        let of_mail: Vec<Published> = published
            .iter()
            .filter(|p| with_id(id)(p))
            .cloned()
            .collect();
        assert_eq!(
            names(&of_mail),
            ["replica-reply", "replica-start"],
            "{id}: one accepted publish per element"
        );
        let reply = of_mail.iter().find(|p| p.name == "replica-reply");
        assert_eq!(
            reply.map(|p| p.correlation_key.as_str()),
            Some(format!("replica {i}").as_str())
        );
    }
    assert_eq!(published.len(), ids.len() * 2);
    println!(
        "two replicas: {} accepted publishes, {} refused as duplicates",
        published.len(),
        gateway.duplicates()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmatched_mail_is_consumed_only_where_an_element_asks_for_it() {
    let (consumer, keeper) = ("model7", "model8");
    clear_inbox(consumer).await;
    clear_inbox(keeper).await;
    let gateway = TestGateway::start().await;
    let rest = CamundaRest::start().await;
    let invoices = |pid: &str, user: &str, consume: &str| {
        let inbound = mailbox(user)
            .with("activationCondition", "=contains(subject, \"invoice\")")
            .with("consumeUnmatchedEvents", consume);
        rest.deploy(
            pid,
            &Process::new(pid)
                .message_start("StartEvent_invoice", &format!("invoice-{user}"), inbound)
                .xml(),
        );
    };
    invoices("model-consume", consumer, "true");
    invoices("model-keep", keeper, "false");
    let (worker, port) = start_worker(&gateway, &rest);
    wait_readyz(&worker, &port, "both processes' start events", |b| {
        watching(b, "model-consume", 1, "StartEvent_invoice")
            && watching(b, "model-keep", 1, "StartEvent_invoice")
    })
    .await;
    let mut unmatched = Vec::new();
    for user in [consumer, keeper] {
        let newsletter = new_id("newsletter");
        deliver(user, &mail(&newsletter, "newsletter", "")).await;
        // In the mailbox before the matching mail: the round that takes that one saw it.
        let deadline = Instant::now() + Duration::from_secs(20);
        while flags_of(user, "INBOX", &newsletter).await.is_none() {
            assert!(Instant::now() < deadline, "{newsletter} never arrived");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let invoice = new_id("invoice");
        deliver(user, &mail(&invoice, "invoice 1", "")).await;
        let published = gateway
            .wait_published(1, Duration::from_secs(30), with_id(&invoice))
            .await;
        assert_eq!(published[0].name, format!("invoice-{user}"));
        wait_flags(user, "INBOX", &invoice, &["Seen"]).await;
        unmatched.push(newsletter);
    }
    wait_flags(consumer, "INBOX", &unmatched[0], &["Seen"]).await;
    stays_unseen_and_unpublished(keeper, &unmatched[1], &gateway, Duration::from_secs(2)).await;
    assert!(
        !gateway.published().iter().any(|p| unmatched
            .iter()
            .any(|id| p.message_id.contains(id.as_str()))),
        "an unmatched mail is never published"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_hand_over_leaves_the_mail_unseen_until_accepted() {
    let user = "model9";
    clear_inbox(user).await;
    let gateway = TestGateway::start().await;
    let rest = CamundaRest::start().await;
    let pid = "model-refused";
    rest.deploy(
        pid,
        &Process::new(pid)
            .message_start("StartEvent_mail", "refused-then-accepted", mailbox(user))
            .xml(),
    );
    let (worker, port) = start_worker(&gateway, &rest);
    wait_readyz(&worker, &port, "the start event", |b| {
        watching(b, pid, 1, "StartEvent_mail")
    })
    .await;
    gateway.refuse_all_hand_overs(true);
    let id = new_id("refused");
    deliver(user, &mail(&id, "refused at first", "")).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while gateway.refused() < 2 {
        assert!(
            Instant::now() < deadline,
            "not tried twice ({} refused):\n{}",
            gateway.refused(),
            log_tail(&worker)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        flags_of(user, "INBOX", &id).await,
        Some(vec![]),
        "refused: untouched"
    );
    assert!(gateway.published().is_empty());
    gateway.refuse_all_hand_overs(false);
    gateway
        .wait_published(1, Duration::from_secs(30), with_id(&id))
        .await;
    wait_flags(user, "INBOX", &id, &["Seen"]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(gateway.published().len(), 1);
}
