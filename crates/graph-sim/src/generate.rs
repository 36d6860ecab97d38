//! A tenant from a seed: users, chats with members, teams and channels, mailboxes, and
//! messages shaped like the ones in Microsoft's Graph docs (html bodies, mentions,
//! quotes, file and card attachments, hosted images, reactions, edits, soft deletes,
//! system events of many kinds, bots, DLP verdicts).

use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::config::SimConfig;
use crate::content::{Posting, Rates};
use crate::docs::{self, ChannelIdentity, ChatMessageDoc, ItemBody, MailDoc};
use crate::store::{Channel, Chat, Conv, Folder, MailboxShape, Store, Team, User};
use crate::text::{self, escape_html, sentence};
use crate::timefmt::{graph_time, to_millis};

/// The app registration the simulator trusts.
pub(crate) struct AppCredentials {
    pub client_id: String,
    pub client_secret: String,
}

pub(crate) fn tenant(config: &SimConfig) -> (Store, AppCredentials) {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let tenant_id = text::uuid(&mut rng);
    let client_id = text::uuid(&mut rng);
    let secret_tail: String = (0..40)
        .map(|_| {
            const ALPHABET: &[u8] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
            char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])
        })
        .collect();
    let credentials = AppCredentials {
        client_id,
        client_secret: format!("sIm8Q~{secret_tail}"),
    };
    let mut store = Store::empty(config.seed, tenant_id, config.start_time);
    let start = store.clock.now();
    let span_ms = i64::from(config.history_days.max(1)) * 86_400_000;
    let oldest = start - chrono::Duration::milliseconds(span_ms);

    for i in 0..config.users {
        let first = text::FIRST_NAMES[i % text::FIRST_NAMES.len()];
        let last = text::LAST_NAMES[(i * 7 + i / text::FIRST_NAMES.len()) % text::LAST_NAMES.len()];
        let name = if i < text::FIRST_NAMES.len() {
            format!("{first} {last}")
        } else {
            format!("{first} {last} {}", i / text::FIRST_NAMES.len() + 1)
        };
        let without_mailbox = config.users.saturating_sub(config.users_without_mailbox);
        let shape = MailboxShape {
            mailbox: i < without_mailbox,
            nested: config.nested_mail_folders,
            hidden: config.hidden_mail_folders,
            // Every Exchange Online mailbox has Recoverable Items, empty or not.
            recoverable_items: true,
        };
        let user = new_user(&mut store, &name, &shape);
        let without_license = without_mailbox.saturating_sub(config.users_without_license);
        store.users[user].licensed = !(without_license..without_mailbox).contains(&i);
    }

    // Content draws from its own generator: its rates change nothing else in the tenant.
    let mut content = Generator {
        rng: StdRng::seed_from_u64(config.seed ^ 0x0c07_e475),
        rates: Rates {
            hosted_contents_per_mille: config.hosted_contents_per_mille,
            file_attachments_per_mille: config.file_attachments_per_mille,
            mail_attachments_per_mille: config.mail_attachments_per_mille,
        },
    };
    generate_chats(&mut store, &mut rng, config, oldest);
    generate_chat_messages(&mut store, &mut rng, &mut content, config, oldest, start);
    let channel_oldest = match config.channel_history_days {
        Some(days) => start - chrono::Duration::days(i64::from(days.max(1))),
        None => oldest,
    };
    generate_teams(
        &mut store,
        &mut rng,
        &mut content,
        config,
        channel_oldest,
        start,
    );
    share_channels_from_other_tenants(&mut store, &mut rng, config);
    generate_mail(&mut store, &mut rng, &mut content, config, oldest, start);
    (store, credentials)
}

/// What generates content for messages and mail, apart from the rest of the tenant.
struct Generator {
    rng: StdRng,
    rates: Rates,
}

fn random_time(rng: &mut StdRng, from: DateTime<Utc>, to: DateTime<Utc>) -> DateTime<Utc> {
    let span = (to - from).num_milliseconds().max(1);
    to_millis(from + chrono::Duration::milliseconds(rng.random_range(0..span)))
}

// ---- directory ------------------------------------------------------------------------

pub(crate) fn new_user(store: &mut Store, display_name: &str, shape: &MailboxShape) -> usize {
    let idx = store.users.len();
    let id = text::uuid(&mut store.rng);
    let mut parts = display_name.split_whitespace();
    let given = parts.next().unwrap_or("User").to_string();
    let surname = parts.collect::<Vec<_>>().join(" ");
    let local: String = given
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_lowercase();
    let local = if local.is_empty() {
        "user".to_string()
    } else {
        local
    };
    let address = format!("{local}{idx}@contoso.onmicrosoft.com");
    let doc = json!({
        "businessPhones": ["+1 425 555 01{:02}".replace("{:02}", &format!("{:02}", idx % 100))],
        "displayName": display_name,
        "givenName": given,
        "jobTitle": (["Analyst", "Trader", "Counsel", "Engineer", "Director"][idx % 5]),
        "mail": address,
        "mobilePhone": null,
        "officeLocation": format!("{}/{}", 10 + idx % 30, 1000 + idx),
        "preferredLanguage": "en-US",
        "surname": surname,
        "userPrincipalName": address,
        "id": id,
    });
    store.users.push(User {
        id: id.clone(),
        display_name: display_name.to_string(),
        mail: address.clone(),
        upn: address,
        chats: Vec::new(),
        folders: Vec::new(),
        mailbox: shape.mailbox,
        licensed: true,
        deleted: false,
        json: bytes::Bytes::from(serde_json::to_vec(&doc).unwrap_or_default()),
    });
    store.user_index.insert(id, idx);
    if !shape.mailbox {
        return idx;
    }
    for (name, well_known) in [
        ("Inbox", "inbox"),
        ("Sent Items", "sentitems"),
        ("Archive", "archive"),
    ] {
        new_folder(store, idx, None, name, false, Some(well_known));
    }
    let mut parent = store.users[idx].folders[0];
    for depth in 0..shape.nested {
        let name = ["Projects", "Contoso deal", "Due diligence", "Drafts 2019"][depth % 4];
        parent = new_folder(store, idx, Some(parent), name, false, None);
    }
    for i in 0..shape.hidden {
        let name = ["Quick Step Settings", "Conversation Action Settings"][i % 2];
        new_folder(store, idx, None, name, true, None);
    }
    if shape.recoverable_items {
        let f = new_folder(
            store,
            idx,
            None,
            "Deletions",
            true,
            Some("recoverableitemsdeletions"),
        );
        // Outside the folder tree that `mailFolders` lists (under recoverableitemsroot).
        store.folders[f].listed = false;
        store.users[idx].folders.retain(|&x| x != f);
    }
    idx
}

/// A new mail folder at the top of a mailbox or inside `parent`.
pub(crate) fn new_folder(
    store: &mut Store,
    user: usize,
    parent: Option<usize>,
    display_name: &str,
    hidden: bool,
    well_known: Option<&'static str>,
) -> usize {
    let folder_id = text::exchange_id(&mut store.rng, "AAMkAGVmMDEz");
    let f = store.folders.len();
    store.folders.push(Folder {
        id: folder_id.clone(),
        user,
        display_name: display_name.to_string(),
        items: Vec::new(),
        parent,
        children: Vec::new(),
        hidden,
        well_known,
        listed: true,
        deleted: false,
    });
    store.folder_index.insert((user, folder_id), f);
    match parent {
        Some(p) => store.folders[p].children.push(f),
        None => store.users[user].folders.push(f),
    }
    f
}

/// Exchange's immutable id of an item whose first REST id is `rest_id`.
fn immutable_id(rest_id: &str) -> String {
    let digest = sha2::Sha256::digest(rest_id.as_bytes());
    format!(
        "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A{}AAA=",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..24])
    )
}

/// The REST id an item gets when it moves into a folder.
pub(crate) fn moved_rest_id(immutable: &str, folder_id: &str) -> String {
    let digest = sha2::Sha256::digest(format!("{immutable}/{folder_id}").as_bytes());
    format!(
        "AAMkAGVmMDEzMTM4LTZmYWUtNDdkNC1hMDZiLTU1OGY5OTZhYmY4OABGAAAAAAAiQ8W967B7TKBjgx9rVEURBwAiIsqMbYjsT5e-T7KzowPTAAAAAAEMAAAiIsqMbYjsT5e-T7KzowPTAA{}AAA=",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..18])
    )
}

pub(crate) fn new_chat(
    store: &mut Store,
    members: Vec<usize>,
    topic: Option<String>,
    created: DateTime<Utc>,
) -> usize {
    let (id, chat_type) = if members.len() == 2 && topic.is_none() {
        let (a, b) = (&store.users[members[0]].id, &store.users[members[1]].id);
        (format!("19:{a}_{b}@unq.gbl.spaces"), "oneOnOne")
    } else {
        let hex = text::hex_id(&mut store.rng, 16);
        (format!("19:{hex}@thread.v2"), "group")
    };
    insert_chat(store, id, chat_type, members, topic, created)
}

fn insert_chat(
    store: &mut Store,
    id: String,
    chat_type: &'static str,
    members: Vec<usize>,
    topic: Option<String>,
    created: DateTime<Utc>,
) -> usize {
    let idx = store.chats.len();
    for &m in &members {
        store.users[m].chats.push(idx);
    }
    store.chats.push(Chat {
        id: id.clone(),
        topic,
        chat_type,
        members,
        created,
        messages: Vec::new(),
    });
    store.chat_index.insert(id, idx);
    idx
}

fn generate_chats(store: &mut Store, rng: &mut StdRng, config: &SimConfig, oldest: DateTime<Utc>) {
    let n = config.users;
    if n < 2 {
        return;
    }
    let created = oldest - chrono::Duration::days(30);
    // One-on-one chats with the next two colleagues, so everyone has some.
    for i in 0..n {
        for step in 1..=2usize.min(n - 1) {
            let j = (i + step) % n;
            if step == 2 && n == 3 && i > j {
                continue;
            }
            let pair = if i < j { vec![i, j] } else { vec![j, i] };
            let exists = store.users[pair[0]]
                .chats
                .iter()
                .any(|&c| store.chats[c].members == pair);
            if !exists {
                new_chat(store, pair, None, created);
            }
        }
    }
    // Group and meeting chats.
    let groups = (n / 3).max(1);
    for g in 0..groups {
        let size = rng.random_range(3..=8usize).min(n);
        let mut members: Vec<usize> = Vec::new();
        while members.len() < size {
            let m = rng.random_range(0..n);
            if !members.contains(&m) {
                members.push(m);
            }
        }
        if g % 3 == 2 {
            // Teams names a meeting's chat by the base64 of its GUID's text, which holds
            // no `/` or `+`.
            let guid = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
            let id = format!(
                "19:meeting_{}@thread.v2",
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(guid.to_string())
            );
            insert_chat(
                store,
                id,
                "meeting",
                members,
                Some(format!("{} (meeting)", text::topic(rng))),
                created,
            );
        } else {
            let topic = if rng.random_bool(0.7) {
                Some(text::topic(rng))
            } else {
                None
            };
            let hex = text::hex_id(rng, 16);
            insert_chat(
                store,
                format!("19:{hex}@thread.v2"),
                "group",
                members,
                topic,
                created,
            );
        }
    }
}

// ---- chat and channel messages ------------------------------------------------------------

/// A chat message with Graph's defaults, ready for content.
pub(crate) fn chat_doc(id: &str, created: DateTime<Utc>, chat_id: &str) -> ChatMessageDoc {
    let t = graph_time(created);
    ChatMessageDoc {
        odata_type: "#microsoft.graph.chatMessage".into(),
        id: id.to_string(),
        reply_to_id: None,
        etag: id.to_string(),
        message_type: "message".into(),
        created_date_time: t.clone(),
        last_modified_date_time: t,
        last_edited_date_time: None,
        deleted_date_time: None,
        subject: None,
        summary: None,
        chat_id: Some(chat_id.to_string()),
        importance: "normal".into(),
        locale: "en-us".into(),
        web_url: None,
        channel_identity: None,
        policy_violation: None,
        event_detail: None,
        from: None,
        body: ItemBody::text(String::new()),
        attachments: Vec::new(),
        mentions: Vec::new(),
        reactions: Vec::new(),
        message_history: Some(Vec::new()),
    }
}

/// A channel message (root or reply) with Graph's defaults.
pub(crate) fn channel_doc(
    id: &str,
    created: DateTime<Utc>,
    team_id: &str,
    channel_id: &str,
    reply_to: Option<&str>,
    tenant_id: &str,
) -> ChatMessageDoc {
    let mut doc = chat_doc(id, created, "");
    doc.chat_id = None;
    doc.reply_to_id = reply_to.map(str::to_string);
    let parent = reply_to.unwrap_or(id);
    doc.web_url = Some(format!(
        "https://teams.microsoft.com/l/message/{}/{id}?groupId={team_id}&tenantId={tenant_id}&createdTime={id}&parentMessageId={parent}",
        channel_id.replace(':', "%3A").replace('@', "%40"),
    ));
    doc.channel_identity = Some(ChannelIdentity {
        team_id: team_id.to_string(),
        channel_id: channel_id.to_string(),
    });
    doc
}

/// Who said something, for content generation.
struct Speaker {
    id: String,
    name: String,
}

/// The setting a message is written in.
struct Place<'a> {
    tenant_id: &'a str,
    /// `chats/{id}` or `teams/{id}/channels/{id}`, for hosted content URLs.
    resource: String,
    members: &'a [Speaker],
    /// Earlier messages of the conversation: (id, sender, preview).
    earlier: &'a [(String, usize, String)],
    channel: Option<(&'a str, &'a str)>,
}

const CHAT_EVENTS: &[&str] = &[
    "callEnded",
    "callStarted",
    "callRecording",
    "callTranscript",
    "chatRenamed",
    "membersAdded",
    "membersDeleted",
    "membersJoined",
    "membersLeft",
    "messagePinned",
    "messageUnpinned",
    "tabUpdated",
    "meetingPolicyUpdated",
    "teamsAppInstalled",
    "conversationMemberRoleUpdated",
];

const CHANNEL_EVENTS: &[&str] = &[
    "channelAdded",
    "channelRenamed",
    "channelDescriptionUpdated",
    "channelSetAsFavoriteByDefault",
    "channelUnsetAsFavoriteByDefault",
    "teamDescriptionUpdated",
    "teamRenamed",
    "teamsAppInstalled",
    "teamsAppRemoved",
    "teamsAppUpgraded",
    "teamArchived",
    "teamUnarchived",
    "membersAdded",
    "teamJoiningEnabled",
    "teamJoiningDisabled",
    "teamCreated",
    "channelDeleted",
    "tabUpdated",
];

fn initiator(speaker: &Speaker) -> Value {
    json!({ "application": null, "device": null, "user": docs::bare_user(&speaker.id, None) })
}

fn event_detail(rng: &mut StdRng, kind: &str, place: &Place<'_>, at: DateTime<Utc>) -> Value {
    let who = &place.members[rng.random_range(0..place.members.len())];
    let other = &place.members[rng.random_range(0..place.members.len())];
    let call_id = format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        rng.random::<u32>(),
        rng.random::<u16>(),
        rng.random::<u16>() & 0xfff,
        rng.random::<u16>() & 0xfff,
        rng.random::<u64>() & 0xffff_ffff_ffff
    );
    let team_id = place.channel.map(|(t, _)| t).unwrap_or_default();
    let channel_id = place.channel.map(|(_, c)| c).unwrap_or_default();
    let odata = format!("#microsoft.graph.{kind}EventMessageDetail");
    let mut detail = match kind {
        "callEnded" => json!({
            "callId": call_id,
            "callDuration": format!("PT{}M{}S", rng.random_range(0..90), rng.random_range(0..60)),
            "callEventType": (["call", "meeting"][rng.random_range(0..2)]),
            "callParticipants": [
                { "participant": { "application": null, "device": null, "user": docs::bare_user(&who.id, Some(&who.name)) } },
                { "participant": { "application": null, "device": null, "user": docs::bare_user(&other.id, Some(&other.name)) } },
            ],
        }),
        "callStarted" => json!({ "callId": call_id, "callEventType": "call" }),
        "callRecording" => json!({
            "callId": call_id,
            "callRecordingDisplayName": "Meeting Recording.mp4",
            "callRecordingUrl": "https://contoso.sharepoint.com/sites/s/Shared%20Documents/Recordings/Meeting%20Recording.mp4?web=1",
            "callRecordingDuration": format!("PT{}M{}.{}S", rng.random_range(1..60), rng.random_range(0..60), rng.random_range(1..99)),
            "callRecordingStatus": "success",
            "meetingOrganizer": { "application": null, "device": null, "user": docs::bare_user(&who.id, None) },
        }),
        "callTranscript" => json!({
            "callId": call_id,
            "callTranscriptICalUid": format!("040000008200E00074C5B7101A82E008{}", text::hex_id(rng, 16).to_uppercase()),
            "meetingOrganizer": { "application": null, "device": null, "user": docs::bare_user(&who.id, None) },
        }),
        "chatRenamed" => {
            json!({ "chatId": place.resource.trim_start_matches("chats/"), "chatDisplayName": text::topic(rng) })
        }
        "membersAdded" => json!({
            "visibleHistoryStartDateTime": "0001-01-01T00:00:00Z",
            "members": [docs::bare_user(&other.id, None)],
        }),
        "membersDeleted" | "membersJoined" => {
            json!({ "members": [docs::bare_user(&other.id, None)] })
        }
        "membersLeft" => json!({
            "members": [{ "id": text::hex_id(rng, 16), "displayName": "Alex (Guest)", "userIdentityType": "anonymousGuest" }],
        }),
        "messagePinned" | "messageUnpinned" => json!({ "eventDateTime": graph_time(at) }),
        "tabUpdated" => json!({ "tabId": format!("tab::{}", text::uuid(rng)) }),
        "meetingPolicyUpdated" => {
            json!({ "meetingChatId": place.resource.trim_start_matches("chats/"), "meetingChatEnabled": rng.random_bool(0.5) })
        }
        "teamsAppInstalled" | "teamsAppRemoved" | "teamsAppUpgraded" => json!({
            "teamsAppId": text::uuid(rng),
            "teamsAppDisplayName": (["Flipgrid", "Polly", "Planner", "Wiki"][rng.random_range(0..4)]),
        }),
        "conversationMemberRoleUpdated" => json!({
            "conversationMemberRoles": ["Owner"],
            "conversationMemberUser": docs::bare_user(&other.id, None),
        }),
        "channelAdded" | "channelDeleted" | "channelRenamed" => json!({
            "channelId": channel_id,
            "channelDisplayName": text::CHANNEL_NAMES[rng.random_range(0..text::CHANNEL_NAMES.len())],
        }),
        "channelDescriptionUpdated" => {
            json!({ "channelId": channel_id, "channelDescription": sentence(rng, 3, 9) })
        }
        "channelSetAsFavoriteByDefault" | "channelUnsetAsFavoriteByDefault" => {
            json!({ "channelId": channel_id })
        }
        "teamDescriptionUpdated" => {
            json!({ "teamId": team_id, "teamDescription": sentence(rng, 3, 9) })
        }
        "teamRenamed" => {
            json!({ "teamId": team_id, "teamDisplayName": text::TEAM_NAMES[rng.random_range(0..text::TEAM_NAMES.len())] })
        }
        "teamCreated" => {
            json!({ "teamId": team_id, "teamDisplayName": "New team", "teamDescription": sentence(rng, 3, 9) })
        }
        _ => json!({ "teamId": team_id }),
    };
    if let Value::Object(map) = &mut detail {
        map.insert("@odata.type".into(), Value::String(odata));
        map.insert("initiator".into(), initiator(who));
    }
    detail
}

/// A message attachment as Graph lists it; `thumbnailUrl` and `teamsAppId` stay null.
fn attachment(
    id: &str,
    content_type: &str,
    content_url: Option<String>,
    content: Option<String>,
    name: Option<String>,
) -> Value {
    json!({
        "id": id,
        "contentType": content_type,
        "contentUrl": content_url,
        "content": content,
        "name": name,
        "thumbnailUrl": null,
        "teamsAppId": null,
    })
}

fn adaptive_card(rng: &mut StdRng) -> String {
    let card = json!({
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            { "type": "TextBlock", "size": "medium", "weight": "bolder", "text": sentence(rng, 2, 5) },
            { "type": "FactSet", "facts": [
                { "title": "Amount", "value": format!("{}.{:02} USD", rng.random_range(10..99_999), rng.random_range(0..100)) },
                { "title": "Status", "value": (["Approved", "Pending", "Rejected"][rng.random_range(0..3)]) },
            ]},
        ],
        "actions": [{ "type": "Action.OpenUrl", "title": "Open", "url": "https://contoso.example/requests/42" }],
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
    });
    // Cards arrive as JSON text inside the `content` string, spaced like Teams writes them.
    serde_json::to_string_pretty(&card)
        .unwrap_or_default()
        .replace('\n', "")
}

/// Fill a message with content: text, html, mentions, quotes, attachments, events...
fn fill_content(
    rng: &mut StdRng,
    doc: &mut ChatMessageDoc,
    sender: usize,
    place: &Place<'_>,
    at: DateTime<Utc>,
) {
    let speaker = &place.members[sender];
    doc.from = Some(docs::user_identity(
        &speaker.id,
        Some(&speaker.name),
        place.tenant_id,
    ));
    let roll: f64 = rng.random();
    let events = if place.channel.is_some() {
        CHANNEL_EVENTS
    } else {
        CHAT_EVENTS
    };
    if roll < 0.06 {
        let kind = events[rng.random_range(0..events.len())];
        doc.message_type = "systemEventMessage".into();
        doc.from = None;
        doc.body = ItemBody::html("<systemEventMessage/>");
        doc.event_detail = Some(event_detail(rng, kind, place, at));
        return;
    }
    if roll < 0.09 {
        let bot_id = format!("28:{}", text::uuid(rng));
        doc.from = Some(docs::bot_identity(
            &bot_id,
            ["Polly", "Build Bot", "Approvals"][rng.random_range(0..3)],
        ));
        let att = text::hex_id(rng, 16);
        doc.body = ItemBody::html(format!("<attachment id=\"{att}\"></attachment>"));
        let card = json!({
            "title": sentence(rng, 2, 4),
            "subtitle": sentence(rng, 3, 8),
            "text": sentence(rng, 5, 20),
            "buttons": [{ "type": "openUrl", "title": "Details", "value": "https://contoso.example/build/7" }],
        });
        doc.attachments.push(attachment(
            &att,
            "application/vnd.microsoft.card.hero",
            None,
            Some(serde_json::to_string(&card).unwrap_or_default()),
            None,
        ));
        return;
    }
    if roll < 0.45 {
        doc.body = ItemBody::text(sentence(rng, 1, 30));
    } else if roll < 0.58 && !place.earlier.is_empty() {
        let (quoted_id, quoted_sender, preview) =
            &place.earlier[rng.random_range(0..place.earlier.len())];
        let quoted = &place.members[*quoted_sender];
        if rng.random_bool(0.5) {
            doc.body = ItemBody::html(format!(
                "<attachment id=\"{quoted_id}\"></attachment><p>{}</p>",
                escape_html(&sentence(rng, 2, 25))
            ));
            let reference = json!({
                "messageId": quoted_id,
                "messagePreview": preview,
                "messageSender": {
                    "application": null,
                    "device": null,
                    "user": { "userIdentityType": "aadUser", "tenantId": place.tenant_id, "id": quoted.id, "displayName": quoted.name },
                },
            });
            doc.attachments.push(attachment(
                quoted_id,
                "messageReference",
                None,
                Some(serde_json::to_string(&reference).unwrap_or_default()),
                None,
            ));
        } else {
            doc.body = ItemBody::html(format!(
                "<div><blockquote itemscope=\"\" itemtype=\"http://schema.skype.com/Reply\" itemid=\"{quoted_id}\"><strong itemprop=\"mri\" itemid=\"8:orgid:{}\">{}</strong><span itemprop=\"time\" itemid=\"{quoted_id}\"></span><p itemprop=\"preview\">{}</p></blockquote><p>{}</p></div>",
                quoted.id,
                escape_html(&quoted.name),
                escape_html(preview),
                escape_html(&sentence(rng, 2, 40))
            ));
        }
    } else if roll < 0.70 {
        let mentioned = &place.members[rng.random_range(0..place.members.len())];
        let mut content = format!(
            "<p>Hi <at id=\"0\">{}</at>, {}",
            escape_html(&mentioned.name),
            escape_html(&sentence(rng, 3, 20))
        );
        doc.mentions.push(json!({
            "id": 0,
            "mentionText": mentioned.name,
            "mentioned": {
                "application": null, "device": null, "conversation": null, "tag": null,
                "user": { "@odata.type": "#microsoft.graph.teamworkUserIdentity", "id": mentioned.id, "displayName": mentioned.name, "userIdentityType": "aadUser", "tenantId": place.tenant_id },
            },
        }));
        if let Some((_, channel_id)) = place.channel
            && rng.random_bool(0.4)
        {
            content.push_str(" cc <at id=\"1\">General</at>");
            doc.mentions.push(json!({
                "id": 1,
                "mentionText": "General",
                "mentioned": {
                    "application": null, "device": null, "user": null, "tag": null,
                    "conversation": { "id": channel_id, "displayName": "General", "conversationIdentityType": "channel" },
                },
            }));
        }
        content.push_str("</p>");
        doc.body = ItemBody::html(content);
    } else if (0.80..0.85).contains(&roll) {
        // Images and files come from the content rates (`Store::generate_message_content`).
        let att = text::hex_id(rng, 16);
        doc.body = ItemBody::html(format!("<attachment id=\"{att}\"></attachment>"));
        doc.attachments.push(attachment(
            &att,
            "application/vnd.microsoft.card.adaptive",
            None,
            Some(adaptive_card(rng)),
            None,
        ));
    } else {
        doc.body = ItemBody::html(format!(
            "<p><b>{}</b></p><ul><li>{}</li><li><i>{}</i></li></ul><p>{} <emoji id=\"1f440_eyes\" alt=\"👀\" title=\"Eyes\"></emoji> <a href=\"https://contoso.example/docs?id={}&amp;v=2\">link</a></p>",
            escape_html(&sentence(rng, 1, 4)),
            escape_html(&sentence(rng, 2, 10)),
            escape_html(&sentence(rng, 2, 10)),
            escape_html(&sentence(rng, 2, 20)),
            rng.random_range(1..999)
        ));
    }
    if rng.random_bool(0.03) {
        doc.importance = ["high", "urgent"][rng.random_range(0..2)].into();
    }
    if rng.random_bool(0.005) {
        doc.policy_violation = Some(json!({
            "dlpAction": "BlockAccess",
            "justificationText": null,
            "policyTip": {
                "generalText": "This item has been blocked by the administrator.",
                "complianceUrl": "https://contoso.example/compliance",
                "matchedConditionDescriptions": ["Credit Card Number"],
            },
            "userAction": "None",
            "verdictDetails": "AllowOverrideWithoutJustification",
        }));
    }
}

/// Later life of a generated message: reactions, an edit or a soft delete, all before `now`.
fn age(
    rng: &mut StdRng,
    doc: &mut ChatMessageDoc,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
    members: &[Speaker],
) -> (DateTime<Utc>, bool) {
    let mut last_modified = created;
    if doc.message_type != "message" {
        return (last_modified, false);
    }
    if rng.random_bool(0.2) {
        for _ in 0..rng.random_range(1..=3) {
            let (kind, name) = text::REACTIONS[rng.random_range(0..text::REACTIONS.len())];
            let who = &members[rng.random_range(0..members.len())];
            let at = random_time(rng, created, now);
            last_modified = last_modified.max(at);
            doc.reactions.push(json!({
                "reactionType": kind,
                "displayName": name,
                "reactionContentUrl": null,
                "createdDateTime": graph_time(at),
                "user": { "application": null, "device": null, "user": { "@odata.type": "#microsoft.graph.teamworkUserIdentity", "id": who.id, "displayName": null, "userIdentityType": "aadUser" } },
            }));
        }
    }
    let mut deleted = false;
    let roll: f64 = rng.random();
    if roll < 0.08 {
        let at = random_time(rng, created, now);
        last_modified = last_modified.max(at);
        doc.last_edited_date_time = Some(graph_time(at));
        let extra = format!(" (edited: {})", sentence(rng, 1, 5));
        doc.body.content.push_str(&escape_html(&extra));
    } else if roll < 0.10 {
        let at = random_time(rng, created, now);
        last_modified = last_modified.max(at);
        doc.deleted_date_time = Some(graph_time(at));
        doc.body.content = String::new();
        deleted = true;
    }
    doc.last_modified_date_time = graph_time(last_modified);
    doc.etag = last_modified.timestamp_millis().to_string();
    (last_modified, deleted)
}

fn speakers(store: &Store, members: &[usize]) -> Vec<Speaker> {
    members
        .iter()
        .map(|&u| Speaker {
            id: store.users[u].id.clone(),
            name: store.users[u].display_name.clone(),
        })
        .collect()
}

fn preview(doc: &ChatMessageDoc) -> String {
    doc.body.content.chars().take(60).collect()
}

fn generate_chat_messages(
    store: &mut Store,
    rng: &mut StdRng,
    content: &mut Generator,
    config: &SimConfig,
    oldest: DateTime<Utc>,
    now: DateTime<Utc>,
) {
    // (created, chat, sender) for every message, then written in time order so quotes
    // refer to earlier messages.
    let mut plan: Vec<(DateTime<Utc>, usize, usize)> =
        Vec::with_capacity(config.users * config.messages_per_user);
    for u in 0..store.users.len() {
        if store.users[u].chats.is_empty() {
            continue;
        }
        for _ in 0..config.messages_per_user {
            let chats = &store.users[u].chats;
            let chat = chats[rng.random_range(0..chats.len())];
            plan.push((
                random_time(rng, oldest, now - chrono::Duration::minutes(1)),
                chat,
                u,
            ));
        }
    }
    plan.sort();
    let mut earlier: Vec<Vec<(String, usize, String)>> = vec![Vec::new(); store.chats.len()];
    let tenant_id = store.tenant_id.clone();
    for (created, chat, user) in plan {
        let conv = Conv::Chat(chat);
        let mut millis = created.timestamp_millis();
        while store
            .message_index
            .contains_key(&(conv, millis.to_string()))
        {
            millis += 1;
        }
        let id = millis.to_string();
        let members = speakers(store, &store.chats[chat].members);
        let sender = store.chats[chat]
            .members
            .iter()
            .position(|&m| m == user)
            .unwrap_or(0);
        let chat_id = store.chats[chat].id.clone();
        let mut doc = chat_doc(&id, created, &chat_id);
        let place = Place {
            tenant_id: &tenant_id,
            resource: format!("chats/{chat_id}"),
            members: &members,
            earlier: &earlier[chat][earlier[chat].len().saturating_sub(20)..],
            channel: None,
        };
        fill_content(rng, &mut doc, sender, &place, created);
        let preview_text = preview(&doc);
        let pending = store.generate_message_content(
            &mut content.rng,
            &content.rates,
            &mut Posting {
                conv,
                message_path: format!("chats/{chat_id}/messages/{id}"),
                sender: user,
                at: created,
                doc: &mut doc,
            },
        );
        let (_, deleted) = age(rng, &mut doc, created, now, &members);
        let idx = store.insert_message(conv, None, &doc, deleted);
        store.attach_pending(idx, pending);
        if doc.message_type == "message" {
            earlier[chat].push((id, sender, preview_text));
        }
    }
}

fn generate_teams(
    store: &mut Store,
    rng: &mut StdRng,
    content: &mut Generator,
    config: &SimConfig,
    oldest: DateTime<Utc>,
    now: DateTime<Utc>,
) {
    let n = store.users.len();
    if n < 2 {
        return;
    }
    let tenant_id = store.tenant_id.clone();
    for t in 0..config.teams {
        let team_id = text::uuid(rng);
        let base = text::TEAM_NAMES[t % text::TEAM_NAMES.len()];
        let display_name = if t < text::TEAM_NAMES.len() {
            base.to_string()
        } else {
            format!("{base} {}", t / text::TEAM_NAMES.len() + 1)
        };
        let size = (n / 2).max(2).min(n);
        let mut members: Vec<usize> = Vec::new();
        while members.len() < size {
            let m = rng.random_range(0..n);
            if !members.contains(&m) {
                members.push(m);
            }
        }
        members.sort_unstable();
        let created = oldest - chrono::Duration::days(60);
        let team_json = json!({
            "id": team_id,
            "createdDateTime": graph_time(created),
            "displayName": display_name,
            "description": format!("{} team", display_name),
            "internalId": format!("19:{}@thread.tacv2", text::hex_id(rng, 16)),
            "classification": null,
            "specialization": "none",
            "visibility": (["private", "public"][t % 2]),
            "webUrl": format!("https://teams.microsoft.com/l/team/19%3A{}%40thread.tacv2/conversations?groupId={team_id}&tenantId={tenant_id}", text::hex_id(rng, 16)),
            "isArchived": false,
            "tenantId": tenant_id,
            "isMembershipLimitedToOwners": false,
        });
        let team = store.teams.len();
        store.teams.push(Team {
            id: team_id.clone(),
            display_name,
            members: members.clone(),
            channels: Vec::new(),
            deleted: false,
            json: bytes::Bytes::from(serde_json::to_vec(&team_json).unwrap_or_default()),
        });
        store.team_index.insert(team_id.clone(), team);
        for c in 0..config.channels_per_team {
            let channel_id = format!("19:{}@thread.tacv2", text::hex_id(rng, 16));
            let name = if c == 0 {
                "General".to_string()
            } else {
                text::CHANNEL_NAMES[1 + (c - 1) % (text::CHANNEL_NAMES.len() - 1)].to_string()
            };
            let channel_json = json!({
                "id": channel_id,
                "createdDateTime": graph_time(created),
                "displayName": name,
                "description": if c == 0 { Value::Null } else { Value::String(sentence(rng, 3, 8)) },
                "isFavoriteByDefault": null,
                "email": "",
                "tenantId": tenant_id,
                "webUrl": format!("https://teams.microsoft.com/l/channel/{}/{}?groupId={team_id}&tenantId={tenant_id}", channel_id.replace(':', "%3A").replace('@', "%40"), name.replace(' ', "%20")),
                "membershipType": "standard",
            });
            let channel = add_channel(store, team, channel_id, name, None, &channel_json);
            generate_channel_messages(
                store, rng, content, config, channel, &members, oldest, now, &tenant_id,
            );
        }
    }
}

/// Channels of another tenant shared into the tenant's teams: listed by `allChannels`
/// with their owner's `tenantId`; this app may not read their messages.
fn share_channels_from_other_tenants(store: &mut Store, rng: &mut StdRng, config: &SimConfig) {
    if store.teams.is_empty() {
        return;
    }
    for i in 0..config.channels_shared_from_other_tenants {
        let team = i % store.teams.len();
        let owner_tenant = text::uuid(rng);
        let channel_id = format!("19:{}@thread.tacv2", text::hex_id(rng, 16));
        let name = format!("Fabrikam shared {}", i + 1);
        let channel_json = json!({
            "id": channel_id,
            "createdDateTime": graph_time(store.clock.now() - chrono::Duration::days(30)),
            "displayName": name,
            "description": "Shared with us by Fabrikam",
            "isFavoriteByDefault": null,
            "email": "",
            "tenantId": owner_tenant,
            "webUrl": format!("https://teams.microsoft.com/l/channel/{}/{}?groupId={}&tenantId={owner_tenant}", channel_id.replace(':', "%3A").replace('@', "%40"), name.replace(' ', "%20"), store.teams[team].id),
            "membershipType": "shared",
        });
        add_channel(
            store,
            team,
            channel_id,
            name,
            Some(owner_tenant),
            &channel_json,
        );
    }
}

/// A channel of `team`, with no messages yet, as `channel_json` describes it.
fn add_channel(
    store: &mut Store,
    team: usize,
    id: String,
    display_name: String,
    owner_tenant: Option<String>,
    channel_json: &Value,
) -> usize {
    let channel = store.channels.len();
    store.channel_index.insert((team, id.clone()), channel);
    store.channels.push(Channel {
        id,
        team,
        display_name,
        roots: Vec::new(),
        owner_tenant,
        json: bytes::Bytes::from(serde_json::to_vec(channel_json).unwrap_or_default()),
    });
    store.teams[team].channels.push(channel);
    channel
}

#[allow(clippy::too_many_arguments)]
fn generate_channel_messages(
    store: &mut Store,
    rng: &mut StdRng,
    content: &mut Generator,
    config: &SimConfig,
    channel: usize,
    members: &[usize],
    oldest: DateTime<Utc>,
    now: DateTime<Utc>,
    tenant_id: &str,
) {
    let conv = Conv::Channel(channel);
    let team_id = store.teams[store.channels[channel].team].id.clone();
    let channel_id = store.channels[channel].id.clone();
    let speakers = speakers(store, members);
    let mut roots: Vec<DateTime<Utc>> = (0..config.messages_per_channel)
        .map(|_| random_time(rng, oldest, now - chrono::Duration::hours(1)))
        .collect();
    roots.sort();
    let mut earlier: Vec<(String, usize, String)> = Vec::new();
    let mut used: std::collections::HashSet<i64> = std::collections::HashSet::new();
    let mut fresh_id = |t: DateTime<Utc>| {
        let mut ms = t.timestamp_millis();
        while !used.insert(ms) {
            ms += 1;
        }
        ms.to_string()
    };
    for created in roots {
        let root_id = fresh_id(created);
        let resource = format!("teams/{team_id}/channels/{channel_id}");
        // Replies first: the root's lastModifiedDateTime follows its latest reply.
        let reply_count = rng.random_range(0..=config.max_replies_per_message);
        let mut replies = Vec::new();
        let mut thread_modified = created;
        for _ in 0..reply_count {
            let at = random_time(rng, created, now);
            let id = fresh_id(at);
            let mut doc = channel_doc(&id, at, &team_id, &channel_id, Some(&root_id), tenant_id);
            let sender = rng.random_range(0..speakers.len());
            let place = Place {
                tenant_id,
                resource: resource.clone(),
                members: &speakers,
                earlier: &earlier[earlier.len().saturating_sub(10)..],
                channel: Some((&team_id, &channel_id)),
            };
            fill_content(rng, &mut doc, sender, &place, at);
            let pending = store.generate_message_content(
                &mut content.rng,
                &content.rates,
                &mut Posting {
                    conv,
                    message_path: format!(
                        "teams/{team_id}/channels/{channel_id}/messages/{root_id}/replies/{id}"
                    ),
                    sender: members[sender],
                    at,
                    doc: &mut doc,
                },
            );
            let (modified, deleted) = age(rng, &mut doc, at, now, &speakers);
            thread_modified = thread_modified.max(modified);
            replies.push((doc, deleted, pending));
        }
        let mut doc = channel_doc(&root_id, created, &team_id, &channel_id, None, tenant_id);
        let sender = rng.random_range(0..speakers.len());
        let place = Place {
            tenant_id,
            resource,
            members: &speakers,
            earlier: &earlier[earlier.len().saturating_sub(10)..],
            channel: Some((&team_id, &channel_id)),
        };
        fill_content(rng, &mut doc, sender, &place, created);
        if doc.message_type == "message" && rng.random_bool(0.3) {
            doc.subject = Some(text::topic(rng));
        }
        let preview_text = preview(&doc);
        let pending = store.generate_message_content(
            &mut content.rng,
            &content.rates,
            &mut Posting {
                conv,
                message_path: format!("teams/{team_id}/channels/{channel_id}/messages/{root_id}"),
                sender: members[sender],
                at: created,
                doc: &mut doc,
            },
        );
        let (modified, deleted) = age(rng, &mut doc, created, now, &speakers);
        if thread_modified > modified {
            doc.last_modified_date_time = graph_time(thread_modified);
            doc.etag = thread_modified.timestamp_millis().to_string();
        }
        let root = store.insert_message(conv, None, &doc, deleted);
        store.attach_pending(root, pending);
        for (reply, deleted, pending) in replies {
            let idx = store.insert_message(conv, Some(root), &reply, deleted);
            store.attach_pending(idx, pending);
        }
        if doc.message_type == "message" {
            earlier.push((root_id, sender, preview_text));
        }
    }
}

// ---- mail -------------------------------------------------------------------------------

/// A new mail message in `folder`, and its REST id (the document carries its immutable id).
pub(crate) fn mail_doc(
    store: &mut Store,
    folder: usize,
    received: DateTime<Utc>,
    subject: &str,
    html: &str,
) -> (MailDoc, String) {
    let owner = store.folders[folder].user;
    let n = store.users.len();
    let sender = if n > 1 {
        (owner + 1 + store.rng.random_range(0..n - 1)) % n
    } else {
        owner
    };
    let (from_name, from_address) = if store.rng.random_bool(0.2) {
        (
            "Microsoft Planner".to_string(),
            "noreply@Planner.Office365.com".to_string(),
        )
    } else {
        (
            store.users[sender].display_name.clone(),
            store.users[sender].mail.clone(),
        )
    };
    let rest_id = text::exchange_id(
        &mut store.rng,
        "AAMkAGVmMDEzMTM4LTZmYWUtNDdkNC1hMDZiLTU1OGY5OTZhYmY4OABGAAAAAAAiQ8W967B7TKBjgx9rVEURBwAiIsqMbYjsT5e-T7KzowPTAAAAAAEMAAAiIsqMbYjsT5e-T7KzowPTAA",
    );
    let id = immutable_id(&rest_id);
    let change_key = text::exchange_id(&mut store.rng, "CQAAABYAAAAiIsqMbYjsT5e");
    let preview: String = html
        .replace("<p>", "")
        .replace("</p>", " ")
        .chars()
        .take(255)
        .collect();
    let t = graph_time(
        chrono::DurationRound::duration_trunc(received, chrono::Duration::seconds(1))
            .unwrap_or(received),
    );
    let owner_user = &store.users[owner];
    let doc = MailDoc {
        odata_type: "#microsoft.graph.message".into(),
        odata_etag: format!("W/\"{change_key}\""),
        id,
        created_date_time: t.clone(),
        last_modified_date_time: graph_time(received),
        change_key,
        categories: Vec::new(),
        received_date_time: t.clone(),
        sent_date_time: t,
        has_attachments: false,
        internet_message_id: format!("<{}@contoso.onmicrosoft.com>", text::hex_id(&mut store.rng, 12)),
        subject: subject.to_string(),
        body_preview: preview.trim().to_string(),
        importance: "normal".into(),
        parent_folder_id: store.folders[folder].id.clone(),
        conversation_id: text::exchange_id(&mut store.rng, "AAQkAGVmMDEz"),
        conversation_index: base64::engine::general_purpose::STANDARD.encode(text::hex_id(&mut store.rng, 11)),
        is_delivery_receipt_requested: None,
        is_read_receipt_requested: false,
        is_read: false,
        is_draft: false,
        web_link: "https://outlook.office365.com/owa/?ItemID=AAMkAGVmMDEz&exvsurl=1&viewmodel=ReadMessageItem".into(),
        inference_classification: "focused".into(),
        body: ItemBody::html(format!("<html>\r\n<head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\r\n</head>\r\n<body>\r\n{html}\r\n</body>\r\n</html>\r\n")),
        sender: docs::email_address(&from_name, &from_address),
        from: docs::email_address(&from_name, &from_address),
        to_recipients: vec![docs::email_address(&owner_user.display_name, &owner_user.mail)],
        cc_recipients: Vec::new(),
        bcc_recipients: Vec::new(),
        reply_to: Vec::new(),
        flag: json!({ "flagStatus": "notFlagged" }),
    };
    (doc, rest_id)
}

fn generate_mail(
    store: &mut Store,
    rng: &mut StdRng,
    content: &mut Generator,
    config: &SimConfig,
    oldest: DateTime<Utc>,
    now: DateTime<Utc>,
) {
    let mut plan: Vec<(DateTime<Utc>, usize)> = Vec::new();
    for u in 0..store.users.len() {
        let folders = store.users[u].folders.clone();
        if folders.len() < 3 {
            continue;
        }
        for _ in 0..config.mail_per_user {
            let roll: f64 = rng.random();
            let folder = if roll < 0.7 {
                folders[0]
            } else if roll < 0.85 {
                folders[1]
            } else {
                folders[2]
            };
            plan.push((
                random_time(rng, oldest, now - chrono::Duration::minutes(1)),
                folder,
            ));
        }
    }
    // Folders beyond Inbox, Sent Items and Archive: nested, hidden, Recoverable Items.
    for f in 0..store.folders.len() {
        let folder = &store.folders[f];
        if folder.well_known.is_some() && folder.listed {
            continue;
        }
        let count = if folder.listed {
            3
        } else {
            config.recoverable_items_per_user
        };
        for _ in 0..count {
            plan.push((
                random_time(rng, oldest, now - chrono::Duration::minutes(1)),
                f,
            ));
        }
    }
    plan.sort();
    for (received, folder) in plan {
        let subject = format!("{}: {}", received.format("%-m/%-d/%Y"), sentence(rng, 2, 6));
        let html = format!(
            "<p>{}</p><p>{}</p>",
            escape_html(&sentence(rng, 5, 30)),
            escape_html(&sentence(rng, 3, 20))
        );
        let (mut doc, rest_id) = mail_doc(store, folder, received, &subject, &html);
        if rng.random_bool(0.6) {
            doc.is_read = true;
            let read_at = random_time(rng, received, now);
            doc.last_modified_date_time = graph_time(read_at);
        }
        if rng.random_bool(0.1) {
            doc.categories.push(
                ["Red category", "Blue category", "Legal hold"][rng.random_range(0..3)].into(),
            );
        }
        if rng.random_bool(0.15) {
            doc.importance = "high".into();
        }
        let owner = store.folders[folder].user;
        store.generate_mail_content(&mut content.rng, &content.rates, &mut doc, owner);
        store.insert_mail(folder, &doc, rest_id);
    }
}
