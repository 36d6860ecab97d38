//! Graph as Microsoft documents it, over plain HTTP: what a client meets in a real tenant
//! (evolvable enums, delta's eight months, users without a mailbox, deleted teams,
//! channels shared from other tenants, nested and hidden mail folders, ids that change
//! when mail moves, key-syntax URLs, limits per request type and per team).

use std::collections::BTreeSet;

use graph_sim::{Billing, RateLimits, SimConfig};
use serde_json::Value;

mod common;
use common::Client;

fn ids(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|v| v["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// GET each path, asserting each is answered with `status`; the bodies, in order.
async fn refusals(client: &Client, paths: &[String], status: u16) -> Vec<Value> {
    let mut bodies = Vec::new();
    for path in paths {
        let (got, body) = client.get(path).await;
        assert_eq!(got, status, "{path}: {body}");
        bodies.push(body);
    }
    bodies
}

#[tokio::test]
async fn system_events_are_unknown_future_values_unless_the_request_prefers_them() {
    let sim = graph_sim::start(SimConfig::small()).await.expect("start");
    let client = Client::new(&sim).await;
    let user = sim.directory().users[0].id.clone();
    let path = format!("/v1.0/users/{user}/chats/getAllMessages?model=A&$top=50");
    let plain = client.all(&path).await;
    let preferred = client
        .all_preferring(&path, &["include-unknown-enum-members"])
        .await;
    let types = |items: &[Value]| -> BTreeSet<String> {
        items
            .iter()
            .map(|v| v["messageType"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert!(types(&preferred).contains("systemEventMessage"));
    assert!(!types(&plain).contains("systemEventMessage"));
    assert!(types(&plain).contains("unknownFutureValue"));
    let hidden = plain
        .iter()
        .find(|v| v["messageType"] == "unknownFutureValue")
        .expect("a hidden system event");
    assert!(
        hidden["eventDetail"]["@odata.type"].is_string(),
        "the event's detail stays: {hidden}"
    );
    // The preference also works beside others in one header.
    let combined = client
        .all_preferring(
            &path,
            &["odata.maxpagesize=10", "include-unknown-enum-members"],
        )
        .await;
    assert_eq!(types(&combined), types(&preferred));
    sim.set_evolvable_enums(false);
    assert!(types(&client.all(&path).await).contains("systemEventMessage"));
}

#[tokio::test]
async fn channel_delta_returns_eight_months_and_older_history_comes_from_lists() {
    let sim = graph_sim::start(SimConfig {
        channel_history_days: Some(500),
        messages_per_channel: 40,
        replay_per_mille: 0,
        ..SimConfig::small()
    })
    .await
    .expect("start");
    let client = Client::new(&sim).await;
    let team = sim.directory().teams[0].clone();
    let channel = team.channels[0].id.clone();
    let snapshot = sim.snapshot();
    let roots = snapshot.channel_roots(&team.id, &channel);
    let horizon = sim.now() - chrono::Months::new(8);
    let recent: BTreeSet<String> = roots
        .iter()
        .filter(|m| m.last_modified >= horizon)
        .map(|m| m.id.clone())
        .collect();
    assert!(
        recent.len() < roots.len(),
        "some history is older than eight months"
    );

    let delta = client
        .all(&format!(
            "/v1.0/teams/{}/channels/{channel}/messages/delta",
            team.id
        ))
        .await;
    assert_eq!(ids(&delta), recent);

    let listed = client
        .all(&format!(
            "/v1.0/teams/{}/channels/{channel}/messages?$top=50",
            team.id
        ))
        .await;
    let all_roots: BTreeSet<String> = roots.iter().map(|m| m.id.clone()).collect();
    assert_eq!(ids(&listed), all_roots, "the list has all history");

    // getAllMessages: roots and replies of every channel, in a window.
    let team_messages: BTreeSet<String> = snapshot
        .messages
        .iter()
        .filter(|m| {
            matches!(&m.conversation, graph_sim::Conversation::Channel { team_id, .. } if *team_id == team.id)
                && m.last_modified < horizon
        })
        .map(|m| m.json.clone())
        .collect();
    let window = format!(
        "/v1.0/teams/{}/channels/getAllMessages?model=A&$top=10&$filter=lastModifiedDateTime lt {}",
        team.id,
        graph_sim::graph_time(horizon)
    );
    let old = client
        .all_preferring(&window, &["include-unknown-enum-members"])
        .await;
    let got: BTreeSet<String> = old.iter().map(|v| v.to_string()).collect();
    let want: BTreeSet<String> = team_messages
        .iter()
        .map(|j| serde_json::from_str::<Value>(j).expect("json").to_string())
        .collect();
    assert_eq!(got, want);
    assert!(
        old.iter().any(|v| v["replyToId"].is_string()),
        "replies come too"
    );
    let (_, first) = client.get(&window).await;
    let next = first["@odata.nextLink"].as_str().expect("more pages");
    assert!(
        next.contains(&format!("teams('{}')/channels/getAllMessages", team.id)),
        "Graph writes getAllMessages links in key syntax: {next}"
    );
    sim.set_billing(Billing {
        model_a: false,
        ..Billing::default()
    });
    let (status, body) = client.get(&window).await;
    assert_eq!(status, 402, "{body}");
}

#[tokio::test]
async fn real_tenants_answer_404_403_and_402_for_what_cannot_be_read() {
    let sim = graph_sim::start(SimConfig::real_tenant())
        .await
        .expect("start");
    let client = Client::new(&sim).await;
    let directory = sim.directory();

    let no_mailbox = directory
        .users
        .iter()
        .find(|u| !u.has_mailbox)
        .expect("a user without a mailbox");
    let paths = [
        format!("/v1.0/users/{}/mailFolders", no_mailbox.id),
        format!(
            "/v1.0/users/{}/mailFolders/inbox/messages/delta",
            no_mailbox.id
        ),
    ];
    for body in refusals(&client, &paths, 404).await {
        assert_eq!(body["error"]["code"], "MailboxNotEnabledForRESTAPI");
    }

    let unlicensed = directory
        .users
        .iter()
        .find(|u| !u.licensed)
        .expect("a user without the licence");
    let paths = [
        format!("/v1.0/users/{}/chats/getAllMessages?model=A", unlicensed.id),
        format!(
            "/beta/users/{}/chats/getAllMessages/delta?model=A",
            unlicensed.id
        ),
    ];
    for body in refusals(&client, &paths, 402).await {
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("needs a valid license")
        );
    }
    let (status, _) = client
        .get(&format!(
            "/v1.0/users/{}/chats/getAllMessages?model=B",
            unlicensed.id
        ))
        .await;
    assert_eq!(status, 200, "model B has no licensing requirement");

    let shared = directory
        .teams
        .iter()
        .flat_map(|t| t.channels.iter().map(move |c| (t, c)))
        .find(|(_, c)| c.owner_tenant_id.is_some())
        .expect("a channel shared from another tenant");
    let listed = client
        .all(&format!("/v1.0/teams/{}/allChannels", shared.0.id))
        .await;
    let entry = listed
        .iter()
        .find(|c| c["id"] == shared.1.id.as_str())
        .expect("listed");
    assert_eq!(entry["membershipType"], "shared");
    assert_ne!(entry["tenantId"].as_str(), Some(sim.tenant_id()));
    let (status, _) = client
        .get(&format!(
            "/v1.0/teams/{}/channels/{}/messages/delta",
            shared.0.id, shared.1.id
        ))
        .await;
    assert_eq!(status, 403);

    let team = directory.teams[0].clone();
    let channel = team.channels[0].id.clone();
    sim.delete_team(&team.id).expect("delete");
    assert!(!sim.directory().teams.iter().any(|t| t.id == team.id));
    let teams = client.all("/v1.0/teams").await;
    assert!(!ids(&teams).contains(&team.id));
    let paths = [
        format!("/v1.0/teams/{}/allChannels", team.id),
        format!("/v1.0/teams/{}/channels/{channel}/messages/delta", team.id),
        format!(
            "/v1.0/teams('{}')/channels('{channel}')/messages/delta",
            team.id
        ),
    ];
    refusals(&client, &paths, 404).await;

    let user = directory.users[0].clone();
    sim.delete_user(&user.id).expect("delete");
    let (status, body) = client
        .get(&format!(
            "/v1.0/users/{}/chats/getAllMessages/delta",
            user.id
        ))
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "Request_ResourceNotFound");
}

#[tokio::test]
async fn mail_folders_nest_hide_and_recoverable_items_is_reached_by_name() {
    let sim = graph_sim::start(SimConfig::real_tenant())
        .await
        .expect("start");
    let client = Client::new(&sim).await;
    let directory = sim.directory();
    let user = directory.users[0].id.clone();
    let mine: Vec<_> = directory
        .mail_folders
        .iter()
        .filter(|f| f.user_id == user)
        .collect();

    // Walk the tree as a client must: top level, then childFolders where there are some.
    let mut found = Vec::new();
    let mut queue = vec![format!(
        "/v1.0/users/{user}/mailFolders?includeHiddenFolders=true&$top=2"
    )];
    while let Some(url) = queue.pop() {
        for folder in client.all(&url).await {
            if folder["childFolderCount"].as_u64().unwrap_or(0) > 0 {
                queue.push(format!(
                    "/v1.0/users/{user}/mailFolders/{}/childFolders?includeHiddenFolders=true",
                    folder["id"].as_str().unwrap_or_default()
                ));
            }
            found.push(folder);
        }
    }
    let listed: BTreeSet<String> = mine
        .iter()
        .filter(|f| f.listed)
        .map(|f| f.id.clone())
        .collect();
    assert_eq!(ids(&found), listed);
    assert!(mine.iter().any(|f| f.hidden && f.listed));
    let deepest = mine.iter().filter(|f| f.parent_id.is_some()).count();
    assert!(deepest >= 3, "folders nested at any depth");

    let without_hidden = client.all(&format!("/v1.0/users/{user}/mailFolders")).await;
    assert!(without_hidden.iter().all(|f| f["isHidden"] == false));
    assert!(without_hidden.len() < found.len());

    let recoverable = mine
        .iter()
        .find(|f| f.well_known_name.as_deref() == Some("recoverableitemsdeletions"))
        .expect("Recoverable Items");
    assert!(!listed.contains(&recoverable.id), "never listed");
    let (status, folder) = client
        .get(&format!(
            "/v1.0/users/{user}/mailFolders/recoverableitemsdeletions"
        ))
        .await;
    assert_eq!(status, 200, "{folder}");
    assert_eq!(folder["id"], recoverable.id.as_str());
    let items = client
        .all_preferring(
            &format!("/v1.0/users/{user}/mailFolders/recoverableitemsdeletions/messages/delta"),
            &["IdType=\"ImmutableId\""],
        )
        .await;
    assert_eq!(
        ids(&items),
        sim.snapshot()
            .mail_in(&user, &recoverable.id)
            .iter()
            .map(|m| m.id.clone())
            .collect()
    );
    assert!(!items.is_empty());

    // Folders come and go.
    let added = sim
        .add_mail_folder(&user, Some(&recoverable.id), "nope", false)
        .err();
    assert!(
        added.is_some(),
        "nothing is created inside Recoverable Items"
    );
    let new = sim
        .add_mail_folder(&user, Some(&mine[0].id), "Q3", false)
        .expect("add");
    let (_, inbox) = client
        .get(&format!("/v1.0/users/{user}/mailFolders/{}", mine[0].id))
        .await;
    assert!(inbox["childFolderCount"].as_u64().unwrap_or(0) >= 1);
    sim.delete_mail_folder(&user, &new.id).expect("delete");
    let (status, body) = client
        .get(&format!(
            "/v1.0/users/{user}/mailFolders/{}/messages/delta",
            new.id
        ))
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "ErrorItemNotFound");
}

#[tokio::test]
async fn a_moved_message_keeps_its_id_only_for_clients_that_prefer_immutable_ids() {
    let sim = graph_sim::start(SimConfig::small()).await.expect("start");
    let client = Client::new(&sim).await;
    let directory = sim.directory();
    let user = directory.users[0].id.clone();
    let folder = |name: &str| {
        directory
            .mail_folder(&user, name)
            .expect("folder")
            .id
            .clone()
    };
    let (inbox, archive) = (folder("Inbox"), folder("Archive"));
    let message = sim.snapshot().mail_in(&user, &inbox)[0].clone();
    assert_ne!(message.id, message.rest_id);
    let delta = |folder: String, prefer: &'static [&'static str]| {
        let client = &client;
        let user = user.clone();
        async move {
            client
                .all_preferring(
                    &format!("/v1.0/users/{user}/mailFolders/{folder}/messages/delta"),
                    prefer,
                )
                .await
        }
    };
    const IMMUTABLE: &[&str] = &["IdType=\"ImmutableId\""];
    assert!(ids(&delta(inbox.clone(), &[]).await).contains(&message.rest_id));
    assert!(ids(&delta(inbox.clone(), IMMUTABLE).await).contains(&message.id));

    let moved = sim
        .move_mail(&user, &inbox, &message.id, &archive)
        .expect("move");
    assert_eq!(moved.id, message.id);
    assert_ne!(moved.rest_id, message.rest_id);
    assert_eq!(moved.received, message.received, "receivedDateTime stays");
    assert!(moved.last_modified > message.last_modified);
    let in_archive = delta(archive.clone(), &[]).await;
    assert!(ids(&in_archive).contains(&moved.rest_id));
    assert!(!ids(&in_archive).contains(&message.rest_id));
    let in_archive = delta(archive, IMMUTABLE).await;
    assert!(ids(&in_archive).contains(&message.id));
    assert!(!ids(&delta(inbox, IMMUTABLE).await).contains(&message.id));

    // Mail delta filters on receivedDateTime only.
    let (status, _) = client
        .get(&format!(
                "/v1.0/users/{user}/mailFolders/inbox/messages/delta?$filter=lastModifiedDateTime ge 2020-01-01T00:00:00Z"
            ))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_team_limit_counts_every_url_form_and_a_lower_app_limit_says_retry_after() {
    let sim = graph_sim::start(SimConfig {
        rate_limit: Some(RateLimits {
            channel_requests_per_second: None,
            ..RateLimits::default()
        }),
        ..SimConfig::small()
    })
    .await
    .expect("start");
    let client = Client::new(&sim).await;
    let team = sim.directory().teams[0].clone();
    let channel = team.channels[0].id.clone();
    let paths = [
        format!("/v1.0/teams/{}/channels/{channel}/messages/delta", team.id),
        format!(
            "/v1.0/teams('{}')/channels('{channel}')/messages/delta",
            team.id
        ),
        format!("/v1.0/teams('{}')/allChannels", team.id),
        format!("/v1.0/teams/{}/channels/getAllMessages?model=A", team.id),
        format!("/v1.0/teams('{}')/channels/getAllMessages?model=A", team.id),
    ];
    let mut statuses = Vec::new();
    for path in &paths {
        statuses.push(client.get(path).await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429], "4 a second on a team");
    let stats = sim.stats();
    let bucket = stats
        .bucket(&format!("team:{}", team.id))
        .expect("the team bucket");
    assert_eq!((bucket.admitted, bucket.throttled), (4, 1));

    sim.set_rate_limits(Some(RateLimits {
        retry_after_seconds: Some(1),
        ..RateLimits::app(2)
    }));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let user = sim.directory().users[0].id.clone();
    let url = format!("{}/v1.0/users/{user}/chats", client.base);
    let mut last = None;
    for _ in 0..3 {
        last = Some(
            client
                .http
                .get(&url)
                .bearer_auth(&client.token)
                .send()
                .await
                .expect("GET"),
        );
    }
    let refused = last.expect("a response");
    assert_eq!(refused.status().as_u16(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
}
