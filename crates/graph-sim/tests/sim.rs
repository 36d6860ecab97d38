//! The simulator as any HTTP client sees it: deterministic tenants shaped like Graph's
//! documents, Graph's rules for delta parameters and page sizes, errors in Graph's form,
//! and the admin API for another process.

use std::collections::BTreeSet;

use graph_sim::{Fault, FaultPlan, FaultRule, SimConfig, Snapshot};
use serde_json::{Value, json};

async fn token(http: &reqwest::Client, sim: &graph_sim::Sim) -> String {
    let url = format!("{}{}/oauth2/v2.0/token", sim.login_url(), sim.tenant_id());
    let scope = format!(
        "{}/.default",
        sim.graph_url().as_str().trim_end_matches('/')
    );
    let response: Value = http
        .post(url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", sim.client_id()),
            ("client_secret", sim.client_secret()),
            ("scope", scope.as_str()),
        ])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token JSON");
    response["access_token"]
        .as_str()
        .expect("an access token")
        .to_string()
}

async fn get(http: &reqwest::Client, token: &str, url: &str) -> (u16, Value) {
    let response = http.get(url).bearer_auth(token).send().await.expect("GET");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn absolute(sim: &graph_sim::Sim, link: &str) -> String {
    if link.starts_with('/') {
        format!("{}{}", sim.graph_url().as_str().trim_end_matches('/'), link)
    } else {
        link.to_string()
    }
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
    let http = reqwest::Client::new();
    let token = token(&http, &sim).await;
    let user = sim.directory().users[0].id.clone();
    let base = sim.graph_url().as_str().trim_end_matches('/').to_string();

    let (status, first) = get(
        &http,
        &token,
        &format!("{base}/beta/users/{user}/chats/getAllMessages/delta?$top=3"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(first["value"].as_array().map(Vec::len), Some(3));
    let next = absolute(&sim, first["@odata.nextLink"].as_str().expect("nextLink"));
    assert!(!next.contains("$top"), "parameters ride inside the token");
    // Graph ignores a parameter repeated on a later call: the token already carries it.
    let (status, repeated) = get(&http, &token, &format!("{next}&$top=10")).await;
    assert_eq!(status, 200, "{repeated}");
    assert_eq!(
        repeated["value"].as_array().map(Vec::len),
        Some(3),
        "the first call fixed the page size"
    );
    sim.set_refuse_repeated_delta_parameters(true);
    let (status, refused) = get(&http, &token, &format!("{next}&$top=10")).await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("first delta call")
    );
    let (status, second) = get(&http, &token, &next).await;
    assert_eq!(status, 200);
    assert_eq!(second["value"].as_array().map(Vec::len), Some(3));

    let team = sim.directory().teams[0].clone();
    let channel = &team.channels[0].id;
    let (status, page) = get(
        &http,
        &token,
        &format!(
            "{base}/v1.0/teams/{}/channels/{channel}/messages/delta?$top=200",
            team.id
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        page["value"].as_array().map(Vec::len),
        Some(50),
        "channel delta caps $top at 50"
    );

    let (status, bad) = get(
        &http,
        &token,
        &format!("{base}/beta/users/{user}/chats/getAllMessages/delta?$skiptoken=garbage"),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
    let (status, filter) = get(
        &http,
        &token,
        &format!("{base}/beta/users/{user}/chats/getAllMessages/delta?$filter=subject eq 'x'"),
    )
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

    let token = token(&http, &sim).await;
    let (status, body) = get(&http, &token, &format!("{base}/v1.0/no/such/thing")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "BadRequest");
    let (status, body) = get(
        &http,
        &token,
        &format!("{base}/v1.0/users/nobody/mailFolders"),
    )
    .await;
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
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "7");

    let wrong = http
        .post(format!(
            "{}{}/oauth2/v2.0/token",
            sim.login_url(),
            sim.tenant_id()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", sim.client_id()),
            ("client_secret", "nope"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .expect("POST");
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
    let credentials: Value = http
        .get(format!("{admin}/credentials"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(credentials["clientSecret"], sim.client_secret());
    let directory: Value = http
        .get(format!("{admin}/directory"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    let chat = &directory["chats"][0];
    let added: Value = http
        .post(format!("{admin}/chat-messages"))
        .json(&json!({ "chatId": chat["id"], "from": chat["memberIds"][0], "html": "<p>from outside</p>" }))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    let edited = http
        .post(format!("{admin}/messages/edit"))
        .json(&json!({ "message": added, "html": "<p>edited from outside</p>" }))
        .send()
        .await
        .expect("POST");
    assert!(edited.status().is_success());
    let snapshot: Snapshot = http
        .get(format!("{admin}/snapshot"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
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
    let stats: Value = http
        .get(format!("{admin}/stats"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
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
    let directory: Value = http
        .get(format!(
            "{}directory",
            ready["admin"].as_str().expect("admin")
        ))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(directory["users"].as_array().map(Vec::len), Some(3));
    let token: Value = http
        .post(format!(
            "{}{}/oauth2/v2.0/token",
            ready["loginUrl"].as_str().unwrap_or_default(),
            ready["tenantId"].as_str().unwrap_or_default()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", ready["clientId"].as_str().unwrap_or_default()),
            (
                "client_secret",
                ready["clientSecret"].as_str().unwrap_or_default(),
            ),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    let bearer = token["access_token"].as_str().expect("a token");
    let (status, users) = get(&http, bearer, &format!("{graph}v1.0/users")).await;
    assert_eq!(status, 200);
    assert_eq!(users["value"].as_array().map(Vec::len), Some(3));
    child.kill().await.expect("stopped");
}
