//! The client against Graph as real tenants serve it (the simulator's documented
//! behaviours): system events behind evolvable enums, mail in folders at any depth and in
//! Recoverable Items, ids that survive a move, channel history beyond delta's eight months,
//! the payment model on every protected call, and scopes that cannot be read for reasons
//! that are not faults.

mod common;

use std::collections::BTreeSet;

use common::*;
use fetch::{FetchError, RECOVERABLE_ITEMS_DELETIONS, RoundStart, Scope, Unavailable};
use graph_sim::{Billing, Conversation, Fault, FaultPlan, FaultRule, SimConfig, Target};
use serde_json::Value;

#[tokio::test]
async fn system_events_arrive_as_system_events() {
    let sim = sim(quiet()).await;
    let client = client(&sim);
    let mut events = 0;
    for user in sim.directory().users {
        let got = round(&client, &chats_of(&user.id), initial(50)).await.ok();
        let types: Vec<Value> = got
            .values()
            .iter()
            .map(|v| v["messageType"].clone())
            .collect();
        assert!(
            !types.iter().any(|t| t == "unknownFutureValue"),
            "Prefer: include-unknown-enum-members was sent"
        );
        events += types.iter().filter(|t| *t == "systemEventMessage").count();
        assert_eq!(got.exact(), expected_chats(&sim, &user.id));
    }
    assert!(events > 0, "the tenant has system events");
    let team = sim.directory().teams[0].clone();
    let got = round(
        &client,
        &Scope::Channel {
            team_id: team.id.clone(),
            channel_id: team.channels[0].id.clone(),
        },
        initial(50),
    )
    .await
    .ok();
    assert!(
        got.values()
            .iter()
            .all(|v| v["messageType"] != "unknownFutureValue")
    );
}

fn folder_named(sim: &graph_sim::Sim, user: &str, name: &str) -> String {
    sim.directory()
        .mail_folder(user, name)
        .expect("folder")
        .id
        .clone()
}

#[tokio::test]
async fn a_message_moved_to_another_folder_keeps_its_id() {
    let sim = sim(quiet()).await;
    let client = client(&sim);
    let user = sim.directory().users[0].id.clone();
    let (inbox, archive) = (
        folder_named(&sim, &user, "Inbox"),
        folder_named(&sim, &user, "Archive"),
    );
    let scope = |folder: &str| Scope::MailFolder {
        user_id: user.clone(),
        folder_id: folder.to_string(),
    };
    let first_inbox = round(&client, &scope(&inbox), initial(50)).await.ok();
    let first_archive = round(&client, &scope(&archive), initial(50)).await.ok();
    let truth: BTreeSet<String> = sim
        .snapshot()
        .mail_in(&user, &inbox)
        .iter()
        .map(|m| m.id.clone())
        .collect();
    assert_eq!(first_inbox.ids(), truth, "immutable ids");

    let moving = truth.iter().next().cloned().expect("a message");
    sim.move_mail(&user, &inbox, &moving, &archive)
        .expect("move");
    let inbox_next = next_round(&client, &scope(&inbox), &first_inbox).await;
    let archive_next = next_round(&client, &scope(&archive), &first_archive).await;
    let removed = inbox_next.values();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["id"], moving.as_str());
    assert!(removed[0]["@removed"].is_object());
    assert_eq!(
        archive_next.ids(),
        [moving].into_iter().collect(),
        "the same id in its new folder"
    );
}

#[tokio::test]
async fn mail_folders_are_found_at_any_depth_and_recoverable_items_by_name() {
    let sim = sim(SimConfig {
        page_size_cap: Some(2),
        ..SimConfig::real_tenant()
    })
    .await;
    let client = client(&sim);
    let directory = sim.directory();
    let user = directory.users[0].id.clone();
    let found = collect(client.mail_folders(&user)).await.ok();
    let listed: BTreeSet<String> = directory
        .mail_folders
        .iter()
        .filter(|f| f.user_id == user && f.listed)
        .map(|f| f.id.clone())
        .collect();
    assert_eq!(found.ids(), listed, "nested and hidden folders included");
    assert_eq!(found.items().len(), listed.len(), "each folder once");
    assert!(
        directory
            .mail_folders
            .iter()
            .any(|f| f.user_id == user && f.parent_id.is_some())
    );

    let recoverable = collect(client.mail_folder(&user, RECOVERABLE_ITEMS_DELETIONS))
        .await
        .ok();
    let folder: Value = serde_json::from_str(recoverable.pages[0].item(0)).expect("json");
    let id = folder["id"].as_str().expect("an id").to_string();
    assert!(!listed.contains(&id), "never listed");
    let items = round(
        &client,
        &Scope::MailFolder {
            user_id: user.clone(),
            folder_id: RECOVERABLE_ITEMS_DELETIONS.to_string(),
        },
        initial(10),
    )
    .await
    .ok();
    let want: BTreeSet<String> = sim
        .snapshot()
        .mail_in(&user, &id)
        .iter()
        .map(|m| m.json.clone())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(items.exact(), want);

    // A folder added later is found by the next walk; a deleted one is gone.
    let parent = directory
        .mail_folders
        .iter()
        .rfind(|f| f.user_id == user && f.parent_id.is_some())
        .expect("the deepest folder")
        .id
        .clone();
    let added = sim
        .add_mail_folder(&user, Some(&parent), "Deeper still", false)
        .expect("add");
    let again = collect(client.mail_folders(&user)).await.ok();
    assert!(again.ids().contains(&added.id));
    sim.delete_mail_folder(&user, &added.id).expect("delete");
    let error = round(
        &client,
        &Scope::MailFolder {
            user_id: user.clone(),
            folder_id: added.id.clone(),
        },
        initial(10),
    )
    .await
    .error
    .expect("404");
    assert_eq!(error.unavailable(), Some(Unavailable::MailFolderNotFound));
}

#[tokio::test]
async fn channel_history_beyond_delta_comes_from_team_windows_replies_included() {
    let sim = sim(SimConfig {
        channel_history_days: Some(400),
        messages_per_channel: 30,
        ..quiet()
    })
    .await;
    let client = client(&sim);
    let team = sim.directory().teams[0].clone();
    let snapshot = sim.snapshot();
    let in_team: BTreeSet<String> = snapshot
        .messages
        .iter()
        .filter(|m| matches!(&m.conversation, Conversation::Channel { team_id, .. } if *team_id == team.id))
        .map(|m| m.json.clone())
        .collect();

    // What delta and replies give: the last eight months' threads.
    let mut got = BTreeSet::new();
    for channel in &team.channels {
        let delta = round(
            &client,
            &Scope::Channel {
                team_id: team.id.clone(),
                channel_id: channel.id.clone(),
            },
            initial(50),
        )
        .await
        .ok();
        for root in delta.ids() {
            got.extend(
                collect(client.replies(&team.id, &channel.id, &root))
                    .await
                    .ok()
                    .items(),
            );
        }
        got.extend(delta.items());
    }
    assert!(got.len() < in_team.len(), "delta alone misses old history");

    // The rest: one window over the whole team, before delta's horizon.
    let horizon = sim.now() - chrono::Months::new(8);
    let window = round(
        &client,
        &Scope::Team {
            team_id: team.id.clone(),
        },
        window_until(horizon, 5),
    )
    .await
    .ok();
    assert!(window.pages.len() > 1);
    assert!(
        window.values().iter().any(|v| v["replyToId"].is_string()),
        "replies come in the window"
    );
    got.extend(window.exact());
    assert_eq!(got, in_team, "every message of the team, replies included");

    // Without billing for the protected API, a channel's whole history is listed instead.
    let channel = team.channels[0].id.clone();
    let history = round(
        &client,
        &Scope::Channel {
            team_id: team.id.clone(),
            channel_id: channel.clone(),
        },
        RoundStart::History { page_size: 50 },
    )
    .await
    .ok();
    assert_eq!(
        history.exact(),
        snapshot
            .channel_roots(&team.id, &channel)
            .iter()
            .map(|m| m.json.clone())
            .collect()
    );
    assert!(history.pages.iter().all(|p| p.link.delta().is_none()));
}

#[tokio::test]
async fn the_payment_model_goes_on_the_chat_delta_too() {
    let sim = sim(quiet()).await;
    let client = client(&sim);
    let user = sim.directory().users[0].id.clone();
    let first = {
        let mut stream = std::pin::pin!(client.round(&chats_of(&user), initial(5)));
        futures::StreamExt::next(&mut stream)
            .await
            .expect("a page")
            .expect("ok")
    };
    assert!(first.url.as_str().contains("model=A"), "{:?}", first.url);
    sim.set_billing(Billing {
        model_a: false,
        ..Billing::default()
    });
    let refused = round(&client, &chats_of(&user), initial(5)).await;
    assert!(
        matches!(refused.error, Some(FetchError::PaymentRequired { .. })),
        "{:?}",
        refused.error
    );
    // A round resumed from a saved link keeps the model its first call set.
    let resumed = round(
        &client,
        &chats_of(&user),
        RoundStart::Resume {
            link: first.link.next().expect("more").to_string(),
        },
    )
    .await;
    assert!(matches!(
        resumed.error,
        Some(FetchError::PaymentRequired { .. })
    ));
}

#[tokio::test]
async fn scopes_that_cannot_be_read_say_why_and_faults_stay_faults() {
    let sim = sim(SimConfig::real_tenant()).await;
    let client = client(&sim);
    let directory = sim.directory();
    let reason = |error: Option<FetchError>| error.expect("an error").unavailable();

    let no_mailbox = directory
        .users
        .iter()
        .find(|u| !u.has_mailbox)
        .expect("a user without a mailbox");
    assert_eq!(
        reason(collect(client.mail_folders(&no_mailbox.id)).await.error),
        Some(Unavailable::NoMailbox)
    );
    assert_eq!(
        reason(
            round(
                &client,
                &Scope::MailFolder {
                    user_id: no_mailbox.id.clone(),
                    folder_id: RECOVERABLE_ITEMS_DELETIONS.into(),
                },
                initial(5),
            )
            .await
            .error
        ),
        Some(Unavailable::NoMailbox)
    );

    let unlicensed = directory
        .users
        .iter()
        .find(|u| !u.licensed)
        .expect("a user without the licence");
    let error = round(&client, &chats_of(&unlicensed.id), initial(5))
        .await
        .error
        .expect("402");
    assert_eq!(
        error.unavailable(),
        Some(Unavailable::NotLicensed),
        "{error}"
    );
    assert_eq!(error.status(), Some(402));

    let (team, shared) = directory
        .teams
        .iter()
        .find_map(|t| {
            t.channels
                .iter()
                .find(|c| c.owner_tenant_id.is_some())
                .map(|c| (t.clone(), c.clone()))
        })
        .expect("a channel shared from another tenant");
    let error = round(
        &client,
        &Scope::Channel {
            team_id: team.id.clone(),
            channel_id: shared.id.clone(),
        },
        initial(5),
    )
    .await
    .error
    .expect("403");
    assert_eq!(error.unavailable(), Some(Unavailable::CrossTenantChannel));
    assert_eq!(
        Unavailable::CrossTenantChannel.as_str(),
        "cross-tenant-channel"
    );

    // A team deleted between listing teams and listing its channels.
    let gone = directory.teams[0].clone();
    sim.delete_team(&gone.id).expect("delete");
    assert_eq!(
        reason(collect(client.channels(&gone.id)).await.error),
        Some(Unavailable::TeamNotFound)
    );
    assert_eq!(
        reason(
            round(
                &client,
                &Scope::Channel {
                    team_id: gone.id.clone(),
                    channel_id: gone.channels[0].id.clone(),
                },
                initial(5),
            )
            .await
            .error
        ),
        Some(Unavailable::TeamNotFound)
    );

    let user = directory.users[0].id.clone();
    sim.delete_user(&user).expect("delete");
    assert_eq!(
        reason(round(&client, &chats_of(&user), initial(5)).await.error),
        Some(Unavailable::UserNotFound)
    );

    // Faults are not reasons: a missing permission (403 elsewhere) and server errors.
    let other = directory.users[1].id.clone();
    sim.set_faults(
        FaultPlan::none().with(
            FaultRule::every(Fault::Status { status: 403 }, 1)
                .on(Target::PathContains("channels".into())),
        ),
    );
    let team = directory.teams[1].clone();
    let forbidden = round(
        &client,
        &Scope::Channel {
            team_id: team.id.clone(),
            channel_id: team.channels[0].id.clone(),
        },
        initial(5),
    )
    .await
    .error
    .expect("403");
    assert_eq!(forbidden.unavailable(), None, "{forbidden}");
    sim.set_faults(FaultPlan::none().with(FaultRule::every(Fault::Status { status: 500 }, 1)));
    let failing = round(&client, &chats_of(&other), initial(5)).await.error;
    assert_eq!(reason(failing), None);
}
