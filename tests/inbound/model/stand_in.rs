//! The REST stand-in and the BPMN builder on their own, so that a scenario test failing says
//! something about the worker and not about them.

use serde_json::{Value, json};

use crate::support::bpmn::{EmailInbound, Process};
use crate::support::camunda_rest::{CamundaRest, FIRST_KEY};

/// A client of the stand-in: status, content type and body of one request.
async fn call(
    rest: &CamundaRest,
    method: &str,
    path: &str,
    body: Option<Value>,
    basic: Option<(&str, &str)>,
) -> Result<(u16, String, String), reqwest::Error> {
    let client = reqwest::Client::new();
    let url = format!("{}{path}", rest.url());
    let mut request = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    };
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    if let Some((user, pass)) = basic {
        request = request.basic_auth(user, Some(pass));
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Ok((status, content_type, response.text().await?))
}

async fn search(rest: &CamundaRest, query: Value) -> Value {
    let (status, _, body) = call(
        rest,
        "POST",
        "/v2/process-definitions/search",
        Some(query),
        None,
    )
    .await
    .expect("search");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

/// The keys (as the strings the API writes) of a search answer's items.
fn keys(answer: &Value) -> Vec<String> {
    answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            i["processDefinitionKey"]
                .as_str()
                .expect("a string key")
                .to_string()
        })
        .collect()
}

fn inbound() -> EmailInbound {
    EmailInbound::imap(
        "127.0.0.1",
        10143,
        "someone@example.test",
        "a \"quoted\" <secret> & more",
    )
}

#[tokio::test]
async fn the_rest_stand_in_pages_filters_and_guards_like_the_cluster_api() {
    let rest = CamundaRest::start().await;
    let xml = |name: &str| {
        Process::new("a")
            .message_start("StartEvent_1", name, inbound())
            .xml()
    };
    let (a1, v_a1) = rest.deploy("a", &xml("a-v1"));
    let (a2, v_a2) = rest.deploy("a", &xml("a-v2"));
    let (b1, v_b1) = rest.deploy("b", &xml("b-v1"));
    assert_eq!((a1, a2, b1), (FIRST_KEY, FIRST_KEY + 1, FIRST_KEY + 2));
    assert_eq!((v_a1, v_a2, v_b1), (1, 2, 1));
    let all = [a1, a2, b1].map(|k| k.to_string()).to_vec();

    // Paging by cursor, one item a page, until a page comes back empty.
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let mut page = json!({ "limit": 1 });
        if !after.is_null() {
            page["after"] = after.clone();
        }
        let answer = search(&rest, json!({ "filter": {}, "page": page })).await;
        assert_eq!(answer["page"]["totalItems"], 3, "{answer}");
        assert_eq!(answer["page"]["hasMoreTotalItems"], false);
        if keys(&answer).is_empty() {
            assert!(answer["page"]["startCursor"].is_null(), "{answer}");
            assert!(answer["page"]["endCursor"].is_null(), "{answer}");
            break;
        }
        assert_eq!(keys(&answer).len(), 1, "{answer}");
        seen.extend(keys(&answer));
        after = answer["page"]["endCursor"].clone();
        assert!(after.is_string(), "{answer}");
        assert!(seen.len() <= 3, "paging never ends: {seen:?}");
    }
    assert_eq!(seen, all);

    // Filters.
    let latest = search(&rest, json!({ "filter": { "isLatestVersion": true } })).await;
    assert_eq!(keys(&latest), [a2.to_string(), b1.to_string()]);
    let item = &latest["items"][0];
    assert_eq!(item["processDefinitionId"], "a");
    assert_eq!(item["version"], 2);
    assert_eq!(item["tenantId"], "<default>");
    assert!(item["versionTag"].is_null());
    let of_a = search(&rest, json!({ "filter": { "processDefinitionId": "a" } })).await;
    assert_eq!(keys(&of_a), [a1.to_string(), a2.to_string()]);
    let by_key = search(
        &rest,
        json!({ "filter": { "processDefinitionKey": b1.to_string() } }),
    )
    .await;
    assert_eq!(keys(&by_key), [b1.to_string()]);

    // The definition and its XML.
    let (status, content_type, body) = call(
        &rest,
        "GET",
        &format!("/v2/process-definitions/{a2}/xml"),
        None,
        None,
    )
    .await
    .expect("xml");
    assert_eq!((status, content_type.as_str()), (200, "text/xml"));
    assert_eq!(body, xml("a-v2"));
    let (status, _, body) = call(
        &rest,
        "GET",
        &format!("/v2/process-definitions/{a2}"),
        None,
        None,
    )
    .await
    .expect("item");
    assert_eq!(status, 200);
    let item: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(item["processDefinitionKey"], a2.to_string());
    assert_eq!(item["version"], 2);

    // Deleting one version: 404 for it, the older one is the latest again.
    rest.delete(a2);
    for path in [
        format!("/v2/process-definitions/{a2}/xml"),
        format!("/v2/process-definitions/{a2}"),
    ] {
        let (status, _, _) = call(&rest, "GET", &path, None, None).await.expect("get");
        assert_eq!(status, 404, "{path}");
    }
    let latest = search(&rest, json!({ "filter": { "isLatestVersion": true } })).await;
    assert_eq!(keys(&latest), [a1.to_string(), b1.to_string()]);
    rest.delete_process("b");
    let left = search(&rest, json!({ "filter": {} })).await;
    assert_eq!(keys(&left), [a1.to_string()]);
    assert_eq!(rest.searches(), 4 + 3 + 2);

    // Basic authentication, recorded.
    rest.require_basic("demo", "demo");
    let query = json!({ "filter": {} });
    let (status, _, _) = call(
        &rest,
        "POST",
        "/v2/process-definitions/search",
        Some(query.clone()),
        None,
    )
    .await
    .expect("search");
    assert_eq!(status, 401);
    let (status, _, _) = call(
        &rest,
        "POST",
        "/v2/process-definitions/search",
        Some(query.clone()),
        Some(("demo", "demo")),
    )
    .await
    .expect("search");
    assert_eq!(status, 200);
    let last = rest.requests().pop().expect("recorded");
    assert_eq!(
        (last.method.as_str(), last.path.as_str()),
        ("POST", "/v2/process-definitions/search")
    );
    assert_eq!(last.authorization.as_deref(), Some("Basic ZGVtbzpkZW1v"));

    // Away for one request, then back; then gone.
    rest.fail_next(1);
    let auth = Some(("demo", "demo"));
    let (status, _, _) = call(
        &rest,
        "POST",
        "/v2/process-definitions/search",
        Some(query.clone()),
        auth,
    )
    .await
    .expect("search");
    assert_eq!(status, 503);
    let (status, _, _) = call(
        &rest,
        "POST",
        "/v2/process-definitions/search",
        Some(query.clone()),
        auth,
    )
    .await
    .expect("search");
    assert_eq!(status, 200);
    rest.shutdown();
    assert!(
        call(
            &rest,
            "POST",
            "/v2/process-definitions/search",
            Some(query),
            auth
        )
        .await
        .is_err(),
        "no answer after shutdown"
    );
}

#[test]
fn the_bpmn_builder_writes_the_templates_properties_escaped() {
    let xml = Process::new("p")
        .message_start("StartEvent_1", "start-message", inbound())
        .intermediate_catch(
            "Event_1",
            "catch-message",
            "=caseId",
            inbound().with("correlationKeyExpression", "=subject"),
        )
        .boundary_on_user_task(
            "Task_1",
            "Event_2",
            "boundary-message",
            "=caseId",
            inbound(),
        )
        .receive_task("Task_2", "receive-message", "=caseId", inbound())
        .xml();
    for needle in [
        "xmlns:zeebe=\"http://camunda.org/schema/zeebe/1.0\"",
        "<bpmn:process id=\"p\" isExecutable=\"true\">",
        "<zeebe:property name=\"inbound.type\" value=\"io.camunda:connector-email-inbound:1\" />",
        "<zeebe:property name=\"authentication.password\" value=\"a &quot;quoted&quot; &lt;secret&gt; &amp; more\" />",
        "<zeebe:property name=\"data.imapConfig.imapPort\" value=\"10143\" />",
        "<zeebe:property name=\"correlationRequired\" value=\"notRequired\" />",
        "<zeebe:property name=\"correlationKeyExpression\" value=\"=subject\" />",
        "<bpmn:messageEventDefinition id=\"MessageEventDefinition_StartEvent_1\" messageRef=\"Message_StartEvent_1\" />",
        "<bpmn:boundaryEvent id=\"Event_2\" zeebe:modelerTemplate=\"io.camunda.connectors.inbound.EmailBoundary.v1\" zeebe:modelerTemplateVersion=\"2\" attachedToRef=\"Task_1\">",
        "<bpmn:receiveTask id=\"Task_2\" zeebe:modelerTemplate=\"io.camunda.connectors.inbound.EmailReceive.v1\" zeebe:modelerTemplateVersion=\"2\" messageRef=\"Message_Task_2\">",
        "<bpmn:message id=\"Message_Event_1\" name=\"catch-message\" zeebe:modelerTemplate=\"io.camunda.connectors.inbound.EmailIntermediate.v1\">",
        "<zeebe:subscription correlationKey=\"=caseId\" />",
        "<bpmn:sequenceFlow id=\"Flow_1\" sourceRef=\"StartEvent_1\" targetRef=\"Event_1\" />",
    ] {
        assert!(xml.contains(needle), "no {needle} in\n{xml}");
    }
    // Balanced: every element opened is closed.
    let opened = xml.matches("<bpmn:").count() + xml.matches("<zeebe:").count();
    let closed = xml.matches("</bpmn:").count() + xml.matches("</zeebe:").count();
    assert_eq!(opened, closed + xml.matches(" />").count(), "{xml}");
}
