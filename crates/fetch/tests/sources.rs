//! Every source against the simulator over real HTTP: each round returns exactly the
//! simulator's items, no more and no fewer.

mod common;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use common::*;
use fetch::{FetchError, MailChangeType, PaymentModel, RoundStart, Scope};
use graph_sim::{Billing, Conversation, EndpointKind, LinkStyle, SimConfig};

#[tokio::test]
async fn discovery_lists_every_user_team_channel_mail_folder_and_chat_across_pages() {
    let sim = sim(SimConfig {
        page_size_cap: Some(2),
        ..quiet()
    })
    .await;
    let client = client(&sim);
    let directory = sim.directory();

    let users = collect(client.users()).await.ok();
    assert!(users.pages.len() > 1, "the cap forces several pages");
    let want: BTreeSet<String> = directory.users.iter().map(|u| u.id.clone()).collect();
    assert_eq!(users.ids(), want);
    let first = &users.values()[0];
    assert!(
        first["userPrincipalName"].is_string()
            && first["mail"].is_string()
            && first["displayName"].is_string()
    );

    let teams = collect(client.teams()).await.ok();
    assert_eq!(
        teams.ids(),
        directory.teams.iter().map(|t| t.id.clone()).collect()
    );

    for team in &directory.teams {
        let channels = collect(client.channels(&team.id)).await.ok();
        assert_eq!(
            channels.ids(),
            team.channels.iter().map(|c| c.id.clone()).collect(),
            "channels of {}",
            team.id
        );
    }

    let user = &directory.users[0];
    let folders = collect(client.mail_folders(&user.id)).await.ok();
    let want: BTreeSet<String> = directory
        .mail_folders
        .iter()
        .filter(|f| f.user_id == user.id && f.listed)
        .map(|f| f.id.clone())
        .collect();
    assert_eq!(folders.ids(), want);

    let chats = collect(client.user_chats(&user.id)).await.ok();
    let mine: Vec<_> = directory
        .chats
        .iter()
        .filter(|c| c.member_ids.contains(&user.id))
        .collect();
    assert_eq!(chats.ids(), mine.iter().map(|c| c.id.clone()).collect());
    for chat in chats.values() {
        let members: BTreeSet<String> = chat["members"]
            .as_array()
            .expect("members are expanded")
            .iter()
            .map(|m| m["userId"].as_str().unwrap_or_default().to_string())
            .collect();
        let want = mine
            .iter()
            .find(|c| c.id == chat["id"].as_str().unwrap_or_default())
            .expect("a known chat");
        assert_eq!(members, want.member_ids.iter().cloned().collect());
    }
}

#[tokio::test]
async fn chat_delta_rounds_return_exactly_each_custodians_messages_byte_for_byte() {
    let sim = sim(SimConfig {
        replay_per_mille: 400,
        ..SimConfig::small()
    })
    .await;
    let client = client(&sim);
    let mut served_twice = 0;
    let mut unordered = false;
    for user in sim.directory().users {
        let got = round(&client, &chats_of(&user.id), initial(7)).await.ok();
        let expected = expected_chats(&sim, &user.id);
        assert_eq!(got.distinct(), expected, "chats of {}", user.display_name);
        assert!(got.pages.len() > 1);
        for (i, page) in got.pages.iter().enumerate() {
            let last = i + 1 == got.pages.len();
            assert_eq!(page.number, i as u64 + 1);
            assert_eq!(page.link.next().is_some(), !last);
            assert_eq!(page.link.delta().is_some(), last);
        }
        served_twice += got.items().len() - got.distinct().len();
        let created: Vec<String> = got
            .values()
            .iter()
            .map(|v| {
                v["createdDateTime"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        unordered |= created.windows(2).any(|w| w[0] > w[1]);
    }
    assert!(served_twice > 0, "replays happened");
    assert_eq!(
        served_twice as u64,
        sim.stats().replays,
        "every extra item is a replay the simulator made"
    );
    assert!(unordered, "delta results are not in time order");
    // A message of a group chat is one JSON text for every custodian: equality with the
    // single ground-truth text above already proves it; make sure such messages exist.
    assert!(
        sim.snapshot()
            .messages
            .iter()
            .any(|m| m.custodians.len() > 2)
    );
}

#[tokio::test]
async fn a_delta_link_returns_exactly_what_changed_since_the_last_round() {
    let sim = sim(quiet()).await;
    let client = client(&sim);
    let directory = sim.directory();
    let me = &directory.users[0];
    let mine: Vec<_> = directory
        .chats
        .iter()
        .filter(|c| c.member_ids.contains(&me.id))
        .collect();
    let other_chat = directory
        .chats
        .iter()
        .find(|c| !c.member_ids.contains(&me.id))
        .expect("a chat without user 0");

    let first = round(&client, &chats_of(&me.id), initial(10)).await.ok();
    let link = first.delta_link();

    let added = sim
        .add_chat_message(&mine[0].id, &me.id, "<p>new after the first round</p>")
        .expect("add");
    let before = sim.snapshot();
    let in_second_chat = before
        .messages
        .iter()
        .find(|m| {
            m.conversation
                == Conversation::Chat {
                    chat_id: mine[1].id.clone(),
                }
                && !m.deleted
        })
        .expect("a message in another chat of mine")
        .message_ref();
    let edited = sim
        .edit_message(&in_second_chat, "<p>edited</p>")
        .expect("edit");
    let victim = before
        .messages
        .iter()
        .find(|m| {
            m.conversation
                == Conversation::Chat {
                    chat_id: mine[0].id.clone(),
                }
                && !m.deleted
                && m.id != added.id
        })
        .expect("another message")
        .message_ref();
    let deleted = sim.soft_delete_message(&victim).expect("soft delete");
    sim.add_chat_message(&other_chat.id, &other_chat.member_ids[0], "<p>not mine</p>")
        .expect("add elsewhere");

    let second = round(&client, &chats_of(&me.id), RoundStart::Resume { link })
        .await
        .ok();
    let added_json = sim
        .snapshot()
        .messages
        .into_iter()
        .find(|m| m.message_ref() == added)
        .expect("added")
        .json;
    let want: BTreeSet<String> = [added_json, edited.json, deleted.json.clone()]
        .into_iter()
        .collect();
    assert_eq!(second.exact(), want);
    let gone: serde_json::Value = serde_json::from_str(&deleted.json).expect("json");
    assert!(gone["deletedDateTime"].is_string());

    let third = next_round(&client, &chats_of(&me.id), &second).await;
    assert!(third.items().is_empty(), "nothing changed since");
    assert_eq!(third.pages.len(), 1);
}

#[tokio::test]
async fn a_round_resumed_from_a_saved_next_link_completes_it() {
    let sim = sim(quiet()).await;
    let client = client(&sim);
    let user = sim.directory().users[1].clone();
    let expected = expected_chats(&sim, &user.id);

    // Take the first page, then abandon the round as a crashed run would.
    let first = {
        let mut stream = std::pin::pin!(client.round(&chats_of(&user.id), initial(5)));
        futures::StreamExt::next(&mut stream)
            .await
            .expect("a page")
            .expect("ok")
    };
    let saved = first
        .link
        .next()
        .map(str::to_string)
        .expect("more pages follow");

    let rest = round(
        &client,
        &chats_of(&user.id),
        RoundStart::Resume { link: saved },
    )
    .await
    .ok();
    assert_eq!(rest.pages[0].number, 1);
    let mut all: BTreeSet<String> = first.iter().map(str::to_string).collect();
    all.extend(rest.exact());
    assert_eq!(all, expected);
}

#[tokio::test]
async fn since_filters_chat_and_channel_rounds_by_last_modified() {
    let sim = sim(quiet()).await;
    let client = client(&sim);
    let snapshot = sim.snapshot();
    let user = sim.directory().users[2].clone();
    let mut times: Vec<DateTime<Utc>> = snapshot
        .chat_messages_of(&user.id)
        .iter()
        .map(|m| m.last_modified)
        .collect();
    times.sort();
    let since = times[times.len() / 2];
    let got = round(
        &client,
        &chats_of(&user.id),
        RoundStart::Initial {
            since: Some(since),
            page_size: 6,
        },
    )
    .await
    .ok();
    let want: BTreeSet<String> = snapshot
        .chat_messages_of(&user.id)
        .into_iter()
        .filter(|m| m.last_modified > since)
        .map(|m| m.json.clone())
        .collect();
    assert!(!want.is_empty() && want.len() < times.len());
    assert_eq!(got.exact(), want);

    let team = &sim.directory().teams[0];
    let channel = &team.channels[0];
    let roots = snapshot.channel_roots(&team.id, &channel.id);
    let mut times: Vec<DateTime<Utc>> = roots.iter().map(|m| m.last_modified).collect();
    times.sort();
    let since = times[times.len() / 2];
    let scope = Scope::Channel {
        team_id: team.id.clone(),
        channel_id: channel.id.clone(),
    };
    let got = round(
        &client,
        &scope,
        RoundStart::Initial {
            since: Some(since),
            page_size: 4,
        },
    )
    .await
    .ok();
    let want: BTreeSet<String> = roots
        .iter()
        .filter(|m| m.last_modified > since)
        .map(|m| m.json.clone())
        .collect();
    assert_eq!(got.exact(), want);
}

#[tokio::test]
async fn time_windows_come_from_get_all_messages_with_counts_and_a_payment_model() {
    let sim = sim(quiet()).await;
    let client = client(&sim);
    let user = sim.directory().users[0].clone();
    let mine = sim
        .snapshot()
        .chat_messages_of(&user.id)
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    let mut times: Vec<DateTime<Utc>> = mine.iter().map(|m| m.last_modified).collect();
    times.sort();
    let (from, to) = (times[times.len() / 4], times[3 * times.len() / 4]);
    let window = RoundStart::Window {
        from: Some(from),
        to,
        page_size: 4,
    };
    let got = round(&client, &chats_of(&user.id), window.clone())
        .await
        .ok();
    let want: BTreeSet<String> = mine
        .iter()
        .filter(|m| m.last_modified > from && m.last_modified < to)
        .map(|m| m.json.clone())
        .collect();
    assert_eq!(got.exact(), want);
    assert!(got.pages.len() > 1);
    for page in &got.pages {
        assert_eq!(
            page.odata_count,
            Some(page.len() as u64),
            "getAllMessages counts each page"
        );
        assert!(page.link.delta().is_none());
    }
    assert!(sim.stats().total(EndpointKind::ChatMessagesWindow) >= got.pages.len() as u64);

    let open = round(&client, &chats_of(&user.id), window_until(to, 50))
        .await
        .ok();
    assert_eq!(
        open.exact(),
        mine.iter()
            .filter(|m| m.last_modified < to)
            .map(|m| m.json.clone())
            .collect()
    );

    sim.set_billing(Billing {
        model_a: false,
        model_b: true,
        evaluation_items: 0,
    });
    let refused = round(&client, &chats_of(&user.id), window.clone()).await;
    match refused.error {
        Some(FetchError::PaymentRequired {
            model: Some(PaymentModel::A),
            ref scope,
            ..
        }) => assert!(scope.contains(&user.id)),
        other => panic!("expected 402 for model A, got {other:?}"),
    }
    let with_b = client_with(&sim, |c| c.payment_model = Some(PaymentModel::B));
    assert_eq!(
        round(&with_b, &chats_of(&user.id), window.clone())
            .await
            .ok()
            .exact(),
        want
    );

    sim.set_billing(Billing {
        model_a: true,
        model_b: true,
        evaluation_items: 6,
    });
    let evaluation = client_with(&sim, |c| c.payment_model = None);
    let limited = round(&evaluation, &chats_of(&user.id), window_until(to, 4)).await;
    assert_eq!(
        limited.pages.len(),
        2,
        "evaluation mode serves until its allowance is spent"
    );
    let error = limited.error.expect("then 402");
    assert!(
        matches!(error, FetchError::PaymentRequired { model: None, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("402") && error.to_string().contains("evaluation"),
        "{error}"
    );
}

#[tokio::test]
async fn windows_are_for_chats_only() {
    let sim = sim(quiet()).await;
    let client = client(&sim);
    let team = sim.directory().teams[0].clone();
    let scope = Scope::Channel {
        team_id: team.id.clone(),
        channel_id: team.channels[0].id.clone(),
    };
    let got = round(&client, &scope, window_until(Utc::now(), 5)).await;
    assert!(matches!(got.error, Some(FetchError::Unsupported { .. })));
    assert_eq!(sim.stats().admitted, 0, "nothing was sent");
}

#[tokio::test]
async fn channel_delta_caps_pages_at_50_follows_relative_links_and_replies_match() {
    let sim = sim(SimConfig {
        messages_per_channel: 130,
        link_style: LinkStyle::Mixed,
        ..quiet()
    })
    .await;
    let client = client(&sim);
    let team = sim.directory().teams[0].clone();
    let channel = team.channels[0].clone();
    let scope = Scope::Channel {
        team_id: team.id.clone(),
        channel_id: channel.id.clone(),
    };
    let got = round(&client, &scope, initial(500)).await.ok();
    let snapshot = sim.snapshot();
    let roots = snapshot.channel_roots(&team.id, &channel.id);
    assert_eq!(got.exact(), roots.iter().map(|m| m.json.clone()).collect());
    assert_eq!(got.pages.len(), 3);
    assert!(got.pages.iter().all(|p| p.len() <= 50));
    assert!(
        got.pages[0]
            .link
            .next()
            .is_some_and(|l| l.starts_with("/v1.0/")),
        "channel links are relative here"
    );
    assert!(got.delta_link().starts_with("/v1.0/"));

    let mut with_replies = 0;
    for root in &roots {
        let replies = collect(client.replies(&team.id, &channel.id, &root.id))
            .await
            .ok();
        let want: BTreeSet<String> = snapshot
            .replies_to(&team.id, &channel.id, &root.id)
            .into_iter()
            .map(|m| m.json.clone())
            .collect();
        assert_eq!(replies.exact(), want, "replies to {}", root.id);
        with_replies += usize::from(!want.is_empty());
    }
    assert!(with_replies > 0);

    // A new reply shows its thread again in the next round, and in the replies.
    let root = &roots[0];
    let author = team.member_ids[0].clone();
    let reply = sim
        .add_reply(
            &team.id,
            &channel.id,
            &root.id,
            &author,
            "<p>late reply</p>",
        )
        .expect("reply");
    let next = next_round(&client, &scope, &got).await;
    let ids: Vec<String> = next
        .values()
        .iter()
        .map(|v| v["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(ids, vec![root.id.clone()]);
    let replies = collect(client.replies(&team.id, &channel.id, &root.id))
        .await
        .ok();
    assert!(replies.ids().contains(&reply.id));
}

#[tokio::test]
async fn links_may_be_absolute_or_relative_everywhere() {
    for style in [LinkStyle::Absolute, LinkStyle::Relative] {
        let sim = sim(SimConfig {
            link_style: style,
            ..quiet()
        })
        .await;
        let client = client(&sim);
        let user = sim.directory().users[3].clone();
        let got = round(&client, &chats_of(&user.id), initial(4)).await.ok();
        assert_eq!(got.exact(), expected_chats(&sim, &user.id));
        let relative = got.pages[0].link.next().is_some_and(|l| l.starts_with('/'));
        assert_eq!(relative, style == LinkStyle::Relative);
        let again = next_round(&client, &chats_of(&user.id), &got).await;
        assert!(again.items().is_empty());
    }
}

fn folder_of(sim: &graph_sim::Sim, user: usize, name: &str) -> (String, String) {
    let directory = sim.directory();
    let user_id = directory.users[user].id.clone();
    let folder = directory
        .mail_folder(&user_id, name)
        .expect("folder")
        .id
        .clone();
    (user_id, folder)
}

#[tokio::test]
async fn mail_delta_selects_fields_pages_by_preference_and_reports_changes_and_removals() {
    let sim = sim(SimConfig {
        mail_per_user: 30,
        ..quiet()
    })
    .await;
    let select = [
        "subject",
        "receivedDateTime",
        "isRead",
        "lastModifiedDateTime",
    ];
    let client = client_with(&sim, |c| {
        c.mail.select = Some(select.iter().map(|s| s.to_string()).collect())
    });
    let (user_id, folder_id) = folder_of(&sim, 0, "Inbox");
    let scope = Scope::MailFolder {
        user_id: user_id.clone(),
        folder_id: folder_id.clone(),
    };

    let got = round(&client, &scope, initial(4)).await.ok();
    let truth = sim.snapshot();
    let want: BTreeSet<String> = truth
        .mail_in(&user_id, &folder_id)
        .iter()
        .map(|m| m.id.clone())
        .collect();
    assert!(want.len() > 8);
    assert_eq!(got.ids(), want);
    assert_eq!(got.items().len(), want.len());
    assert!(
        got.pages.iter().all(|p| p.len() <= 4),
        "Prefer: odata.maxpagesize=4 is honoured"
    );
    for value in got.values() {
        let keys: BTreeSet<&str> = value
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        let allowed: BTreeSet<&str> = ["@odata.type", "@odata.etag", "id"]
            .into_iter()
            .chain(select)
            .collect();
        assert_eq!(keys, allowed, "only the selected properties");
    }

    let added = sim
        .add_mail(&user_id, &folder_id, "Quarterly numbers", "<p>attached</p>")
        .expect("add");
    let existing: Vec<String> = want.iter().cloned().collect();
    let updated = sim
        .update_mail(&user_id, &folder_id, &existing[0])
        .expect("update");
    sim.delete_mail(&user_id, &folder_id, &existing[1])
        .expect("delete");
    let next = next_round(&client, &scope, &got).await;
    let values = next.values();
    assert_eq!(values.len(), 3, "{values:?}");
    let removed: Vec<_> = values
        .iter()
        .filter(|v| v.get("@removed").is_some())
        .collect();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["id"], existing[1].as_str());
    assert_eq!(removed[0]["@removed"]["reason"], "deleted");
    let changed: BTreeSet<(String, String)> = values
        .iter()
        .filter(|v| v.get("@removed").is_none())
        .map(|v| {
            (
                v["id"].as_str().unwrap_or_default().to_string(),
                v["lastModifiedDateTime"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let t = |d: DateTime<Utc>| graph_sim::graph_time(d);
    let want: BTreeSet<(String, String)> = [
        (added.id, t(added.last_modified)),
        (updated.id, t(updated.last_modified)),
    ]
    .into_iter()
    .collect();
    assert_eq!(changed, want);
}

#[tokio::test]
async fn mail_change_types_and_default_properties() {
    let sim = sim(quiet()).await;
    let (user_id, folder_id) = folder_of(&sim, 1, "Inbox");
    let scope = Scope::MailFolder {
        user_id: user_id.clone(),
        folder_id: folder_id.clone(),
    };
    let full = client(&sim);
    let got = round(&full, &scope, initial(50)).await.ok();
    let truth: BTreeSet<String> = sim
        .snapshot()
        .mail_in(&user_id, &folder_id)
        .iter()
        .map(|m| m.json.clone())
        .collect();
    assert_eq!(
        got.exact(),
        truth,
        "without $select the items are the full messages, byte for byte"
    );

    let deletions = client_with(&sim, |c| c.mail.change_type = Some(MailChangeType::Deleted));
    let first = round(&deletions, &scope, initial(50)).await.ok();
    assert!(
        first.items().is_empty(),
        "an initial round has nothing deleted to report"
    );
    let ids: Vec<String> = got.ids().into_iter().collect();
    sim.delete_mail(&user_id, &folder_id, &ids[0])
        .expect("delete");
    sim.add_mail(&user_id, &folder_id, "new", "<p>x</p>")
        .expect("add");
    let next = next_round(&deletions, &scope, &first).await;
    assert_eq!(next.ids(), [ids[0].clone()].into_iter().collect());
}

#[tokio::test]
async fn expired_state_tokens_ask_for_a_resync() {
    let sim = sim(quiet()).await;
    let client = client(&sim);
    let user = sim.directory().users[0].clone();
    let got = round(&client, &chats_of(&user.id), initial(10)).await.ok();
    sim.advance_clock(std::time::Duration::from_secs(8 * 24 * 3600));
    let stale = round(
        &client,
        &chats_of(&user.id),
        RoundStart::Resume {
            link: got.delta_link(),
        },
    )
    .await;
    let error = stale.error.expect("410");
    assert!(error.is_resync_required(), "{error}");
    assert_eq!(error.status(), Some(410));
    let text = error.to_string();
    assert!(
        text.contains(&user.id) && text.contains("resync") && text.contains("<redacted>"),
        "{text}"
    );

    // Mid-round links die with the epoch too, for every source.
    let team = sim.directory().teams[0].clone();
    let (mail_user, folder) = folder_of(&sim, 0, "Inbox");
    for scope in [
        chats_of(&user.id),
        Scope::Channel {
            team_id: team.id.clone(),
            channel_id: team.channels[0].id.clone(),
        },
        Scope::MailFolder {
            user_id: mail_user,
            folder_id: folder,
        },
    ] {
        let mut stream = std::pin::pin!(client.round(&scope, initial(2)));
        let page = futures::StreamExt::next(&mut stream)
            .await
            .expect("page")
            .expect("ok");
        let link = page.link.next().expect("more pages").to_string();
        sim.expire_state_tokens();
        let resumed = round(&client, &scope, RoundStart::Resume { link }).await;
        assert!(
            resumed
                .error
                .as_ref()
                .is_some_and(FetchError::is_resync_required),
            "{scope}: {:?}",
            resumed.error
        );
    }
}

#[tokio::test]
async fn unknown_scopes_are_errors_that_name_them() {
    let sim = sim(quiet()).await;
    let client = client(&sim);
    let got = round(&client, &chats_of("no-such-user"), initial(5)).await;
    let error = got.error.expect("404");
    assert_eq!(error.status(), Some(404));
    assert_eq!(error.unavailable(), Some(fetch::Unavailable::UserNotFound));
    assert!(
        error.to_string().contains("chats of user no-such-user"),
        "{error}"
    );
    assert_eq!(
        sim.stats().count(EndpointKind::ChatMessagesDelta, 404),
        1,
        "a 404 is not retried"
    );
}
