//! The simulator as any HTTP client sees it: deterministic tenants shaped like Graph's
//! documents, Graph's rules for delta parameters and page sizes, errors in Graph's form,
//! and the admin API for another process.

use std::collections::BTreeSet;

use graph_sim::{Fault, FaultPlan, FaultRule, SimConfig, Snapshot};
use serde_json::{Value, json};

mod common;
use common::{Client, GRAPH_SCOPE, access_token, request_token, response_json};

/// A client whose token asks for the simulator's own URL as its scope (the other form the
/// token endpoint accepts besides Graph's).
async fn client(sim: &graph_sim::Sim) -> Client {
    let scope = format!(
        "{}/.default",
        sim.graph_url().as_str().trim_end_matches('/')
    );
    Client::with_scope(sim, &scope).await
}

#[tokio::test]
async fn the_same_seed_makes_the_same_tenant_byte_for_byte() {
    let a = graph_sim::start(SimConfig::small()).await.expect("start");
    let b = graph_sim::start(SimConfig::small()).await.expect("start");
    let c = graph_sim::start(SimConfig {
        seed: 8,
        ..SimConfig::small()
    })
    .await
    .expect("start");
    let json = |s: Snapshot| serde_json::to_string(&s).expect("serialise");
    assert_eq!(json(a.snapshot()), json(b.snapshot()));
    assert_eq!(a.client_secret(), b.client_secret());
    assert_ne!(json(a.snapshot()), json(c.snapshot()));
}

#[tokio::test]
async fn generated_messages_have_the_shapes_of_graphs_documents() {
    let sim = graph_sim::start(SimConfig::demo()).await.expect("start");
    let snapshot = sim.snapshot();
    let values: Vec<Value> = snapshot
        .messages
        .iter()
        .map(|m| serde_json::from_str(&m.json).expect("JSON"))
        .collect();
    let event_types: BTreeSet<&str> = values
        .iter()
        .filter_map(|v| v["eventDetail"]["@odata.type"].as_str())
        .collect();
    assert!(
        event_types.len() >= 15,
        "many system event kinds: {event_types:?}"
    );
    let attachment_types: BTreeSet<&str> = values
        .iter()
        .flat_map(|v| v["attachments"].as_array().into_iter().flatten())
        .filter_map(|a| a["contentType"].as_str())
        .collect();
    for kind in [
        "reference",
        "application/vnd.microsoft.card.adaptive",
        "application/vnd.microsoft.card.hero",
        "messageReference",
    ] {
        assert!(
            attachment_types.contains(kind),
            "{kind} in {attachment_types:?}"
        );
    }
    let card = values
        .iter()
        .flat_map(|v| v["attachments"].as_array().into_iter().flatten())
        .find(|a| a["contentType"] == "application/vnd.microsoft.card.adaptive")
        .expect("a card");
    let inner: Value =
        serde_json::from_str(card["content"].as_str().expect("card JSON is a string"))
            .expect("JSON inside content");
    assert_eq!(inner["type"], "AdaptiveCard");
    assert!(
        values
            .iter()
            .any(|v| v["from"]["application"]["applicationIdentityType"] == "bot")
    );
    assert!(
        values
            .iter()
            .any(|v| v["mentions"].as_array().is_some_and(|m| !m.is_empty()))
    );
    assert!(
        values
            .iter()
            .any(|v| v["reactions"].as_array().is_some_and(|r| !r.is_empty()))
    );
    assert!(values.iter().any(|v| v["lastEditedDateTime"].is_string()));
    assert!(
        values
            .iter()
            .any(|v| v["deletedDateTime"].is_string() && v["body"]["content"] == "")
    );
    assert!(values.iter().any(|v| {
        v["body"]["content"]
            .as_str()
            .is_some_and(|c| c.contains("/hostedContents/"))
    }));
    assert!(
        values
            .iter()
            .any(|v| v["channelIdentity"]["teamId"].is_string() && v["replyToId"].is_string())
    );
    // Graph drops trailing zeros of the fraction: some timestamps have fewer than 3 digits.
    assert!(
        values
            .iter()
            .any(|v| v["createdDateTime"].as_str().is_some_and(|t| t.len() < 24))
    );
    assert!(
        snapshot.messages.iter().any(|m| m.custodians.len() > 2),
        "group chats"
    );
    assert!(
        sim.directory()
            .chats
            .iter()
            .any(|c| c.chat_type == "meeting")
    );
}

#[tokio::test]
async fn later_delta_calls_ignore_repeated_parameters_and_page_sizes_follow_graph() {
    let sim = graph_sim::start(SimConfig {
        messages_per_channel: 120,
        replay_per_mille: 0,
        ..SimConfig::small()
    })
    .await
    .expect("start");
    let client = client(&sim).await;
    let user = sim.directory().users[0].id.clone();

    let (status, first) = client
        .get(&format!(
            "/beta/users/{user}/chats/getAllMessages/delta?$top=3"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(first["value"].as_array().map(Vec::len), Some(3));
    let next = client.absolute(first["@odata.nextLink"].as_str().expect("nextLink"));
    assert!(!next.contains("$top"), "parameters ride inside the token");
    // Graph ignores a parameter repeated on a later call: the token already carries it.
    let (status, repeated) = client.get(&format!("{next}&$top=10")).await;
    assert_eq!(status, 200, "{repeated}");
    assert_eq!(
        repeated["value"].as_array().map(Vec::len),
        Some(3),
        "the first call fixed the page size"
    );
    sim.set_refuse_repeated_delta_parameters(true);
    let (status, refused) = client.get(&format!("{next}&$top=10")).await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("first delta call")
    );
    let (status, second) = client.get(&next).await;
    assert_eq!(status, 200);
    assert_eq!(second["value"].as_array().map(Vec::len), Some(3));

    let team = sim.directory().teams[0].clone();
    let channel = &team.channels[0].id;
    let (status, page) = client
        .get(&format!(
            "/v1.0/teams/{}/channels/{channel}/messages/delta?$top=200",
            team.id
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        page["value"].as_array().map(Vec::len),
        Some(50),
        "channel delta caps $top at 50"
    );

    let (status, bad) = client
        .get(&format!(
            "/beta/users/{user}/chats/getAllMessages/delta?$skiptoken=garbage"
        ))
        .await;
    assert_eq!(status, 400, "{bad}");
    let (status, filter) = client
        .get(&format!(
            "/beta/users/{user}/chats/getAllMessages/delta?$filter=subject eq 'x'"
        ))
        .await;
    assert_eq!(status, 400, "{filter}");
}

#[tokio::test]
async fn errors_come_in_graphs_form() {
    let sim = graph_sim::start(SimConfig::small()).await.expect("start");
    let http = reqwest::Client::new();
    let base = sim.graph_url().as_str().trim_end_matches('/').to_string();
    let response = http
        .get(format!("{base}/v1.0/users"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");

    let client = client(&sim).await;
    let (status, body) = client.get("/v1.0/no/such/thing").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "BadRequest");
    let (status, body) = client.get("/v1.0/users/nobody/mailFolders").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "Request_ResourceNotFound");

    sim.set_faults(FaultPlan::none().with(FaultRule::times(
        Fault::TooManyRequests {
            retry_after: graph_sim::RetryAfter::Seconds(7),
        },
        1,
    )));
    let response = http
        .get(format!("{base}/v1.0/users"))
        .bearer_auth(&client.token)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "7");

    let wrong = request_token(
        &http,
        sim.login_url().as_str(),
        sim.tenant_id(),
        sim.client_id(),
        "nope",
        GRAPH_SCOPE,
    )
    .await;
    assert_eq!(wrong.status().as_u16(), 401);
    let body: Value = wrong.json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"][0], 7000215);
}

#[tokio::test]
async fn the_admin_api_drives_the_simulator_from_another_process() {
    let sim = graph_sim::start(SimConfig::small()).await.expect("start");
    let http = reqwest::Client::new();
    let admin = format!("{}_sim", sim.graph_url());
    let credentials: Value = response_json(http.get(format!("{admin}/credentials"))).await;
    assert_eq!(credentials["clientSecret"], sim.client_secret());
    let directory: Value = response_json(http.get(format!("{admin}/directory"))).await;
    let chat = &directory["chats"][0];
    let new_message = json!({
        "chatId": chat["id"],
        "from": chat["memberIds"][0],
        "html": "<p>from outside</p>",
    });
    let added: Value = response_json(
        http.post(format!("{admin}/chat-messages"))
            .json(&new_message),
    )
    .await;
    let edited = http
        .post(format!("{admin}/messages/edit"))
        .json(&json!({ "message": added, "html": "<p>edited from outside</p>" }))
        .send()
        .await
        .expect("POST");
    assert!(edited.status().is_success());
    let snapshot: Snapshot = response_json(http.get(format!("{admin}/snapshot"))).await;
    let message = snapshot
        .messages
        .iter()
        .find(|m| m.id == added["id"].as_str().unwrap_or_default())
        .expect("the new message");
    assert!(message.json.contains("edited from outside"));
    assert_eq!(
        sim.history()
            .messages
            .iter()
            .filter(|m| m.id == message.id)
            .count(),
        2,
        "two versions"
    );

    let refused = http
        .post(format!("{admin}/chat-messages"))
        .json(&json!({ "chatId": "19:none@thread.v2", "from": "x", "html": "" }))
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status().as_u16(), 400);

    let plan = FaultPlan::none().with(FaultRule::every(Fault::ConnectionReset, 2));
    assert!(
        http.put(format!("{admin}/faults"))
            .json(&plan)
            .send()
            .await
            .expect("PUT")
            .status()
            .is_success()
    );
    let before = sim.now();
    http.post(format!("{admin}/clock/advance"))
        .json(&json!({ "seconds": 3600 }))
        .send()
        .await
        .expect("POST");
    assert_eq!(sim.now() - before, chrono::Duration::hours(1));
    let settings = http
        .put(format!("{admin}/settings"))
        .json(&json!({ "latencyMs": 5, "rateLimits": null, "pageSizeCap": 3 }))
        .send()
        .await
        .expect("PUT");
    assert!(settings.status().is_success());
    let stats: Value = response_json(http.get(format!("{admin}/stats"))).await;
    assert!(stats["requests"].is_array());
}

#[tokio::test]
async fn graph_sim_serve_prints_where_it_listens_and_serves_until_stopped() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_graph-sim"))
        .args([
            "serve",
            "--port",
            "0",
            "--users",
            "3",
            "--messages-per-user",
            "4",
            "--latency-ms",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the graph-sim binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("a line within 30 s")
        .expect("readable")
        .expect("a first line");
    let ready: Value = serde_json::from_str(&first).expect("one JSON line");
    let graph = ready["graphUrl"].as_str().expect("graphUrl").to_string();
    let http = reqwest::Client::new();
    let directory: Value = response_json(http.get(format!(
        "{}directory",
        ready["admin"].as_str().expect("admin")
    )))
    .await;
    assert_eq!(directory["users"].as_array().map(Vec::len), Some(3));
    let field = |name: &str| ready[name].as_str().unwrap_or_default().to_string();
    let response = request_token(
        &http,
        &field("loginUrl"),
        &field("tenantId"),
        &field("clientId"),
        &field("clientSecret"),
        GRAPH_SCOPE,
    )
    .await;
    let client = Client {
        token: access_token(response).await,
        http,
        base: graph.trim_end_matches('/').to_string(),
    };
    let (status, users) = client.get("/v1.0/users").await;
    assert_eq!(status, 200);
    assert_eq!(users["value"].as_array().map(Vec::len), Some(3));
    child.kill().await.expect("stopped");
}
