//! What messages point to, as a client fetches it over HTTP: hosted images, shared files
//! (`/shares`, a redirect to a download URL that takes no token), mail attachments and MIME;
//! deletions, refusals and faults on them; the ground truth to compare copies with.

use base64::Engine as _;
use graph_sim::{
    AttachmentKind, ContentFilter, ContentKind, ContentPiece, EndpointKind, Fault, FaultPlan,
    FaultRule, NewAttachment, NewContent, NewFile, NewImage, RateLimits, RetryAfter, SimConfig,
    Target, encode_sharing_url,
};
use serde_json::{Value, json};
use sha2::Digest as _;

mod common;
use common::Client;

/// A small tenant where content is common.
fn with_content() -> SimConfig {
    SimConfig {
        hosted_contents_per_mille: 300,
        file_attachments_per_mille: 300,
        mail_attachments_per_mille: 500,
        ..SimConfig::small()
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// GET with the app's token: status, headers, body bytes.
async fn get_bytes(client: &Client, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let url = if path.starts_with("http") {
        path.to_string()
    } else {
        format!("{}{path}", client.base)
    };
    let response = client
        .http
        .get(url)
        .bearer_auth(&client.token)
        .send()
        .await
        .expect("GET");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body").to_vec();
    (status, headers, body)
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The Graph path of an `<img src="https://graph.microsoft.com/...">` in a body.
fn image_paths(html: &str) -> Vec<String> {
    html.split("src=\"https://graph.microsoft.com")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect()
}

fn piece<'a>(pieces: &'a [ContentPiece], id: &str) -> &'a ContentPiece {
    pieces
        .iter()
        .find(|p| p.id == id)
        .expect("a piece with that id")
}

/// Post a message to the first chat with one image and one shared file: the image and the file.
fn post_image_and_file(
    sim: &graph_sim::Sim,
    html: &str,
    image_size: u64,
    file_name: &str,
    file_size: u64,
) -> (ContentPiece, ContentPiece) {
    let chat = &sim.directory().chats[0];
    let posted = sim
        .add_chat_message_with(
            &chat.id,
            &chat.member_ids[0],
            html,
            &NewContent {
                images: vec![NewImage {
                    size: Some(image_size),
                }],
                files: vec![NewFile {
                    name: Some(file_name.into()),
                    size: Some(file_size),
                    drive_item_id: None,
                }],
            },
        )
        .expect("message");
    let of_kind = |kind| {
        posted
            .content
            .iter()
            .find(|p| p.kind == kind)
            .cloned()
            .expect("a piece of that kind")
    };
    (
        of_kind(ContentKind::HostedContent),
        of_kind(ContentKind::DriveItem),
    )
}

/// GET with the app's token: the status and Graph's error code, if the body carries one.
async fn get_error(client: &Client, path: &str) -> (u16, Option<String>) {
    let (status, body) = client.get(path).await;
    (status, body["error"]["code"].as_str().map(str::to_string))
}

/// The status of a GET without a token, as a download URL is fetched.
async fn anonymous_status(url: &str) -> u16 {
    reqwest::get(url).await.expect("GET").status().as_u16()
}

#[tokio::test]
async fn hosted_images_are_listed_and_served_in_every_message_form() {
    let sim = graph_sim::start(with_content()).await.expect("start");
    let client = Client::new(&sim).await;
    let truth = sim.content();
    let snapshot = sim.snapshot();
    let mut forms = std::collections::BTreeSet::new();
    let mut checked = 0;
    for message in &snapshot.messages {
        let doc: Value = serde_json::from_str(&message.json).expect("JSON");
        for path in image_paths(doc["body"]["content"].as_str().unwrap_or_default()) {
            assert!(
                path.starts_with("/v1.0/") || path.starts_with("/beta/"),
                "{path}"
            );
            let form = if path.contains("/replies/") {
                "reply"
            } else if path.contains("/chats/") {
                "chat"
            } else {
                "channel"
            };
            forms.insert(form);
            let (status, headers, bytes) = get_bytes(&client, &path).await;
            assert_eq!(status, 200, "{path}");
            assert_eq!(headers["content-type"], "image/png");
            assert_eq!(
                headers["content-length"].to_str().ok(),
                Some(bytes.len().to_string().as_str())
            );
            assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
            let id = path.rsplit('/').nth(1).expect("an id");
            let expected = piece(&truth, id);
            assert_eq!(expected.kind, ContentKind::HostedContent);
            assert_eq!(expected.url, path);
            assert_eq!(expected.sha256.as_deref(), Some(sha256(&bytes).as_str()));
            assert_eq!(expected.messages, vec![message.message_ref()]);

            let list = path
                .trim_end_matches("/$value")
                .rsplit_once('/')
                .expect("/")
                .0;
            let (status, _, raw) = get_bytes(&client, list).await;
            assert_eq!(status, 200, "{list}");
            // The docs' order, not alphabetical.
            let text = String::from_utf8_lossy(&raw);
            assert!(text.contains("\"value\":[{\"id\":"), "{text}");
            let (status, page) = client.get(list).await;
            assert_eq!(status, 200, "{list}: {page}");
            assert!(
                page["@odata.context"]
                    .as_str()
                    .is_some_and(|c| c.ends_with("/hostedContents"))
            );
            assert_eq!(page["@odata.count"], 1);
            assert_eq!(
                page["value"][0],
                json!({ "id": id, "contentBytes": null, "contentType": null })
            );
            let (status, entity) = client.get(path.trim_end_matches("/$value")).await;
            assert_eq!(status, 200);
            assert_eq!(entity["id"], id);
            assert!(entity["contentBytes"].is_null() && entity["contentType"].is_null());
            checked += 1;
        }
    }
    assert!(checked >= 5, "{checked} images");
    assert_eq!(forms.len(), 3, "chat, channel and reply images: {forms:?}");

    // OData key syntax names the same image; without a token it is refused.
    let image = truth
        .iter()
        .find(|p| p.kind == ContentKind::HostedContent && p.url.contains("/chats/"))
        .expect("a chat image");
    let parts: Vec<&str> = image.url.split('/').collect();
    let keyed = format!(
        "/{}/chats('{}')/messages('{}')/hostedContents('{}')/$value",
        parts[1],
        parts[3].replace(':', "%3A").replace('@', "%40"),
        parts[5],
        parts[7]
    );
    let (status, _, bytes) = get_bytes(&client, &keyed).await;
    assert_eq!(status, 200, "{keyed}");
    assert_eq!(sha256(&bytes), image.sha256.clone().unwrap_or_default());
    assert_eq!(
        anonymous_status(&format!("{}{}", client.base, image.url)).await,
        401
    );
    assert_eq!(
        get_error(
            &client,
            &format!("{}x", image.url.trim_end_matches("/$value"))
        )
        .await,
        (404, Some("NotFound".into()))
    );
}

#[tokio::test]
async fn shared_files_resolve_from_their_encoded_url_and_download_without_a_token() {
    let sim = graph_sim::start(with_content()).await.expect("start");
    let client = Client::new(&sim).await;
    let truth = sim.content();
    let files: Vec<&ContentPiece> = truth
        .iter()
        .filter(|p| p.kind == ContentKind::DriveItem && !p.messages.is_empty())
        .collect();
    assert!(
        files.iter().any(|f| f.messages.len() >= 2),
        "some file is shared by several messages"
    );
    // The URL a message carries, as the archiver meets it.
    let snapshot = sim.snapshot();
    let (doc, attachment) = snapshot
        .messages
        .iter()
        .map(|m| serde_json::from_str::<Value>(&m.json).expect("JSON"))
        .find_map(|doc| {
            let att = doc["attachments"]
                .as_array()?
                .iter()
                .find(|a| a["contentType"] == "reference")?
                .clone();
            Some((doc.clone(), att))
        })
        .expect("a message sharing a file");
    let content_url = attachment["contentUrl"].as_str().expect("contentUrl");
    assert!(content_url.starts_with("https://contoso"), "{content_url}");
    assert!(content_url.contains("sharepoint.com/"), "{content_url}");
    let id = attachment["id"].as_str().expect("id");
    assert!(
        doc["body"]["content"]
            .as_str()
            .is_some_and(|b| b.contains(&format!("<attachment id=\"{id}\"></attachment>")))
    );

    let share = encode_sharing_url(content_url);
    let (status, item) = client.get(&format!("/v1.0/shares/{share}/driveItem")).await;
    assert_eq!(status, 200, "{item}");
    let expected = truth
        .iter()
        .find(|p| p.id == item["id"].as_str().unwrap_or_default())
        .expect("the file in the truth");
    assert_eq!(expected.web_url.as_deref(), Some(content_url));
    assert_eq!(item["name"], attachment["name"]);
    assert_eq!(item["size"], expected.size);
    assert_eq!(item["webUrl"], content_url);
    assert_eq!(
        item["parentReference"]["driveId"].as_str(),
        expected.drive_id.as_deref()
    );
    assert_eq!(
        item["file"]["mimeType"].as_str(),
        expected.content_type.as_deref()
    );
    assert_eq!(
        item["file"]["hashes"]["quickXorHash"].as_str(),
        expected.quick_xor_hash.as_deref()
    );
    for key in [
        "eTag",
        "cTag",
        "lastModifiedDateTime",
        "@microsoft.graph.downloadUrl",
    ] {
        assert!(item[key].is_string(), "{key} in {item}");
    }
    assert!(
        item["eTag"]
            .as_str()
            .is_some_and(|e| e.contains(&id.to_uppercase()))
    );

    // `content` redirects (302) to a URL on the simulator that needs no token.
    let http = no_redirects();
    let drive_id = item["parentReference"]["driveId"]
        .as_str()
        .unwrap_or_default();
    let item_id = item["id"].as_str().unwrap_or_default();
    let mut locations = Vec::new();
    for path in [
        format!("/v1.0/shares/{share}/driveItem/content"),
        format!("/beta/shares('{share}')/driveItem/content"),
        format!("/v1.0/drives/{drive_id}/items/{item_id}/content"),
    ] {
        let response = http
            .get(format!("{}{path}", client.base))
            .bearer_auth(&client.token)
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status().as_u16(), 302, "{path}");
        let location = response.headers()["location"]
            .to_str()
            .expect("text")
            .to_string();
        assert!(location.starts_with(&client.base), "{location}");
        locations.push(location);
    }
    assert!(locations.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        locations[0],
        item["@microsoft.graph.downloadUrl"]
            .as_str()
            .unwrap_or_default()
    );
    sim.reset_stats();
    let download = http.get(&locations[0]).send().await.expect("GET");
    assert_eq!(download.status().as_u16(), 200);
    assert_eq!(
        download.headers()["content-length"].to_str().ok(),
        Some(expected.size.to_string().as_str())
    );
    let bytes = download.bytes().await.expect("bytes");
    assert_eq!(Some(sha256(&bytes)), expected.sha256);
    let stats = sim.stats();
    assert_eq!(
        (stats.downloads, stats.downloads_with_authorization),
        (1, 0)
    );
    assert_eq!(stats.count(EndpointKind::Download, 200), 1);
    // A token sent anyway is not refused, only counted.
    let leaked = http
        .get(&locations[0])
        .bearer_auth(&client.token)
        .send()
        .await
        .expect("GET");
    assert_eq!(leaked.status().as_u16(), 200);
    assert_eq!(sim.stats().downloads_with_authorization, 1);
    // Part of it, as the docs' partial range downloads.
    let part = http
        .get(&locations[0])
        .header("Range", "bytes=10-19")
        .send()
        .await
        .expect("GET");
    assert_eq!(part.status().as_u16(), 206);
    assert_eq!(
        part.headers()["content-range"].to_str().ok(),
        Some(format!("bytes 10-19/{}", expected.size).as_str())
    );
    assert_eq!(part.bytes().await.expect("bytes"), bytes.slice(10..20));
    // The eTag the client holds answers 304.
    let unchanged = http
        .get(format!(
            "{}/v1.0/shares/{share}/driveItem/content",
            client.base
        ))
        .bearer_auth(&client.token)
        .header("If-None-Match", item["eTag"].as_str().unwrap_or_default())
        .send()
        .await
        .expect("GET");
    assert_eq!(unchanged.status().as_u16(), 304);

    // Share ids encoded otherwise than the docs say are refused; unknown URLs are not found.
    let padded = format!(
        "u!{}",
        base64::engine::general_purpose::STANDARD.encode(format!("{content_url}?"))
    );
    let (status, body) = client
        .get(&format!("/v1.0/shares/{padded}/driveItem"))
        .await;
    assert_eq!(status, 400, "{body}");
    let unknown =
        encode_sharing_url("https://contoso.sharepoint.com/sites/x/Shared%20Documents/none.docx");
    assert_eq!(
        get_error(&client, &format!("/v1.0/shares/{unknown}/driveItem")).await,
        (404, Some("itemNotFound".into()))
    );
}

#[tokio::test]
async fn mail_attachments_of_three_kinds_with_select_value_and_mime() {
    let sim = graph_sim::start(SimConfig::small()).await.expect("start");
    let client = Client::new(&sim).await;
    let user = sim.directory().users[0].id.clone();
    let attachment = |kind, name: &str, size, inline| NewAttachment {
        kind,
        name: name.into(),
        size: Some(size),
        content_type: None,
        is_inline: inline,
    };
    let posted = sim
        .add_mail_with(
            &user,
            "inbox",
            "Quarterly numbers",
            "<p>See attached.</p>",
            &[
                attachment(AttachmentKind::File, "Budget.xlsx", 5000, false),
                attachment(AttachmentKind::File, "Chart.png", 3000, true),
                attachment(AttachmentKind::Item, "RE: Forecast", 2000, false),
                attachment(AttachmentKind::Reference, "Plan.docx", 7000, false),
            ],
        )
        .expect("mail");
    let mail: Value = serde_json::from_str(&posted.mail.json).expect("JSON");
    assert_eq!(mail["hasAttachments"], true);
    let body = mail["body"]["content"].as_str().unwrap_or_default();
    assert!(
        body.contains("src=\"cid:"),
        "the inline image is in the body: {body}"
    );
    let kinds: Vec<ContentKind> = posted.attachments.iter().map(|a| a.kind).collect();
    assert_eq!(
        kinds,
        [
            ContentKind::FileAttachment,
            ContentKind::FileAttachment,
            ContentKind::ItemAttachment,
            ContentKind::ReferenceAttachment
        ]
    );
    let base = format!("/v1.0/users/{user}/messages/{}", posted.mail.rest_id);

    let (status, page) = client.get(&format!("{base}/attachments")).await;
    assert_eq!(status, 200, "{page}");
    let items = page["value"].as_array().cloned().unwrap_or_default();
    let types: Vec<&str> = items
        .iter()
        .filter_map(|a| a["@odata.type"].as_str())
        .collect();
    assert_eq!(
        types,
        [
            "#microsoft.graph.fileAttachment",
            "#microsoft.graph.fileAttachment",
            "#microsoft.graph.itemAttachment",
            "#microsoft.graph.referenceAttachment"
        ]
    );
    for (item, expected) in items.iter().zip(&posted.attachments) {
        assert_eq!(item["id"].as_str(), Some(expected.id.as_str()));
        assert_eq!(item["name"].as_str(), expected.name.as_deref());
        assert_eq!(item["size"], expected.size);
        assert!(item["lastModifiedDateTime"].is_string());
        assert!(item["isInline"].is_boolean());
    }
    let file = &items[0];
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(file["contentBytes"].as_str().expect("contentBytes"))
        .expect("base64");
    assert_eq!(Some(sha256(&bytes)), posted.attachments[0].sha256);
    assert_eq!(
        file["contentType"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(file["contentId"].is_null());
    assert_eq!(items[1]["isInline"], true);
    assert!(items[1]["contentId"].is_string());
    assert!(items[2]["contentBytes"].is_null() && items[2].get("contentBytes").is_none());
    assert!(items[3].get("sourceUrl").is_none(), "v1.0 has no sourceUrl");

    // `$select` leaves out contentBytes, keeps the type.
    let (status, selected) = client
        .get(&format!(
            "{base}/attachments?$select=id,name,contentType,size,isInline,lastModifiedDateTime"
        ))
        .await;
    assert_eq!(status, 200);
    for item in selected["value"].as_array().into_iter().flatten() {
        assert!(item.get("contentBytes").is_none(), "{item}");
        assert!(item["@odata.type"].is_string());
        assert!(item["size"].is_number() && item["name"].is_string());
    }
    let (status, _) = client
        .get(&format!("{base}/attachments?$select=nope"))
        .await;
    assert_eq!(status, 400);

    // One attachment, and its raw bytes.
    let (status, one) = client
        .get(&format!("{base}/attachments/{}", posted.attachments[0].id))
        .await;
    assert_eq!(status, 200);
    assert!(
        one["@odata.context"]
            .as_str()
            .is_some_and(|c| c.ends_with("/attachments/$entity"))
    );
    assert_eq!(one["contentBytes"], file["contentBytes"]);
    for expected in &posted.attachments[..3] {
        let (status, headers, raw) = get_bytes(&client, &expected.url).await;
        assert_eq!(status, 200, "{}", expected.url);
        assert_eq!(Some(sha256(&raw)), expected.sha256, "{}", expected.url);
        assert_eq!(raw.len() as u64, expected.size);
        if expected.kind == ContentKind::FileAttachment {
            assert_eq!(
                headers["content-type"].to_str().ok(),
                expected.content_type.as_deref()
            );
        } else {
            let item = mail_parser::MessageParser::default()
                .parse(&raw)
                .expect("the attached item is MIME");
            assert_eq!(item.subject(), Some("RE: Forecast"));
        }
    }
    let (status, refused) = client
        .get(&format!(
            "{base}/attachments/{}/$value",
            posted.attachments[3].id
        ))
        .await;
    assert_eq!(status, 405, "{refused}");

    // beta shows where a reference attachment links to, and /shares serves that file.
    let (status, beta) = client
        .get(&format!(
            "/beta/users/{user}/messages/{}/attachments",
            posted.mail.id
        ))
        .await;
    assert_eq!(status, 200);
    let source_url = beta["value"][3]["sourceUrl"].as_str().expect("sourceUrl");
    let (status, item) = client
        .get(&format!(
            "/v1.0/shares/{}/driveItem",
            encode_sharing_url(source_url)
        ))
        .await;
    assert_eq!(status, 200, "{item}");
    assert_eq!(item["name"], "Plan.docx");
    assert_eq!(item["size"], 7000);

    // The mail's MIME parses and carries its attachments.
    let (status, headers, raw) = get_bytes(&client, &format!("{base}/$value")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/plain");
    let mime_truth = sim.content_where(&ContentFilter {
        kind: Some(ContentKind::MailMime),
        id: Some(posted.mail.id.clone()),
        ..ContentFilter::default()
    });
    assert_eq!(mime_truth[0].sha256, Some(sha256(&raw)));
    let message = mail_parser::MessageParser::default()
        .parse(&raw)
        .expect("MIME");
    assert_eq!(message.subject(), Some("Quarterly numbers"));
    assert!(
        message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .is_some()
    );
    let owner = &sim.directory().users[0];
    assert_eq!(
        message
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some(owner.mail.as_str())
    );
    assert!(message.date().is_some());
    assert_eq!(
        message.message_id().map(|id| format!("<{id}>")),
        mail["internetMessageId"].as_str().map(str::to_string)
    );
    assert!(
        message
            .body_html(0)
            .is_some_and(|h| h.contains("See attached."))
    );
    let parts: Vec<&mail_parser::MessagePart<'_>> = message.attachments().collect();
    let files: Vec<String> = parts
        .iter()
        .filter(|p| !p.is_message())
        .map(|p| sha256(p.contents()))
        .collect();
    assert!(files.contains(posted.attachments[0].sha256.as_ref().expect("sha")));
    assert!(files.contains(posted.attachments[1].sha256.as_ref().expect("sha")));
    assert!(parts.iter().any(|p| p.is_message()), "the attached item");

    // Other ways to name the same mail: its folder, its immutable id.
    let inbox = sim
        .directory()
        .mail_folders
        .into_iter()
        .find(|f| f.user_id == user && f.well_known_name.as_deref() == Some("inbox"))
        .expect("inbox");
    let (status, _) = client
        .get(&format!(
            "/v1.0/users/{user}/mailFolders/{}/messages/{}/attachments",
            inbox.id, posted.mail.id
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        get_error(
            &client,
            &format!("/v1.0/users/{user}/messages/AAMkNope=/attachments")
        )
        .await,
        (404, Some("ErrorItemNotFound".into()))
    );
}

#[tokio::test]
async fn deleted_content_answers_404_and_forbidden_content_403() {
    let sim = graph_sim::start(SimConfig::small()).await.expect("start");
    let client = Client::new(&sim).await;
    let directory = sim.directory();
    let chat = &directory.chats[0];
    let (image, file) = post_image_and_file(&sim, "<p>look</p>", 2000, "Deal.pdf", 3000);
    let share = encode_sharing_url(file.web_url.as_deref().unwrap_or_default());
    let (status, item) = client.get(&format!("/v1.0/shares/{share}/driveItem")).await;
    assert_eq!(status, 200);
    let download = item["@microsoft.graph.downloadUrl"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    sim.forbid_content(&file.id, true).expect("forbid");
    assert_eq!(
        get_error(&client, &format!("/v1.0/shares/{share}/driveItem")).await,
        (403, Some("accessDenied".into()))
    );
    let (status, _, _) = get_bytes(&client, &file.url).await;
    assert_eq!(status, 403);
    assert_eq!(anonymous_status(&download).await, 403);
    sim.forbid_content(&file.id, false).expect("allow");
    assert_eq!(anonymous_status(&download).await, 200);

    let deleted = sim.delete_content(&file.id).expect("delete");
    assert!(deleted.deleted);
    assert_eq!(
        get_error(&client, &format!("/v1.0/shares/{share}/driveItem")).await,
        (404, Some("itemNotFound".into()))
    );
    assert_eq!(anonymous_status(&download).await, 404);

    let (status, _, _) = get_bytes(&client, &image.url).await;
    assert_eq!(status, 200);
    sim.forbid_content(&image.id, true).expect("forbid");
    assert_eq!(
        get_error(&client, image.url.trim_end_matches("/$value")).await,
        (403, Some("Forbidden".into()))
    );
    sim.forbid_content(&image.id, false).expect("allow");
    sim.delete_content(&image.id).expect("delete");
    let (status, _, _) = get_bytes(&client, &image.url).await;
    assert_eq!(status, 404);
    let list = image
        .url
        .trim_end_matches("/$value")
        .rsplit_once('/')
        .expect("/")
        .0;
    let (status, page) = client.get(list).await;
    assert_eq!((status, page["@odata.count"].as_u64()), (200, Some(0)));

    // A soft-deleted message's images are gone with it.
    let other = sim
        .add_chat_message_with(
            &chat.id,
            &chat.member_ids[1],
            "<p>again</p>",
            &NewContent {
                images: vec![NewImage::default()],
                files: Vec::new(),
            },
        )
        .expect("message");
    sim.soft_delete_message(&other.message)
        .expect("soft delete");
    let (status, _, _) = get_bytes(&client, &other.content[0].url).await;
    assert_eq!(status, 404);
    assert!(
        sim.content_where(&ContentFilter {
            id: Some(other.content[0].id.clone()),
            ..ContentFilter::default()
        })[0]
            .deleted
    );

    // A mail attachment deleted leaves its mail: a new version without it.
    let user = directory.users[1].id.clone();
    let mail = sim
        .add_mail_with(
            &user,
            "inbox",
            "one file",
            "<p>x</p>",
            &[NewAttachment {
                kind: AttachmentKind::File,
                name: "a.pdf".into(),
                size: Some(100),
                content_type: None,
                is_inline: false,
            }],
        )
        .expect("mail");
    let attachment = &mail.attachments[0];
    sim.forbid_content(&attachment.id, true).expect("forbid");
    assert_eq!(
        get_error(&client, &attachment.url).await,
        (403, Some("ErrorAccessDenied".into()))
    );
    sim.forbid_content(&attachment.id, false).expect("allow");
    let versions_before = sim
        .history()
        .mail
        .iter()
        .filter(|m| m.id == mail.mail.id)
        .count();
    sim.delete_content(&attachment.id).expect("delete");
    assert_eq!(
        get_error(&client, &attachment.url).await,
        (404, Some("ErrorItemNotFound".into()))
    );
    let versions: Vec<_> = sim
        .history()
        .mail
        .into_iter()
        .filter(|m| m.id == mail.mail.id)
        .collect();
    assert_eq!(versions.len(), versions_before + 1);
    let latest: Value = serde_json::from_str(&versions[versions.len() - 1].json).expect("JSON");
    assert_eq!(latest["hasAttachments"], false);
    assert!(matches!(
        sim.delete_content("no-such-id"),
        Err(graph_sim::SimError::UnknownContent(_))
    ));
}

#[tokio::test]
async fn content_routes_throttle_and_cut_bodies_like_other_calls() {
    let sim = graph_sim::start(SimConfig::small()).await.expect("start");
    let client = Client::new(&sim).await;
    let (image, file) = post_image_and_file(&sim, "<p>pic</p>", 100_000, "Big.zip", 300_000);
    sim.set_faults(
        FaultPlan::none()
            .with(
                FaultRule::times(
                    Fault::TooManyRequests {
                        retry_after: RetryAfter::Seconds(3),
                    },
                    1,
                )
                .on(Target::Endpoint(EndpointKind::HostedContentValue)),
            )
            .with(
                FaultRule::times(Fault::TruncatedBody, 1)
                    .on(Target::Endpoint(EndpointKind::Download)),
            ),
    );
    let (status, headers, _) = get_bytes(&client, &image.url).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "3");
    let (status, _, bytes) = get_bytes(&client, &image.url).await;
    assert_eq!(status, 200);
    assert_eq!(Some(sha256(&bytes)), image.sha256);

    // A download cut short: the length promised, half of it sent, the connection closed.
    let http = no_redirects();
    let redirect = http
        .get(format!("{}{}", client.base, file.url))
        .bearer_auth(&client.token)
        .send()
        .await
        .expect("GET");
    let location = redirect.headers()["location"]
        .to_str()
        .expect("text")
        .to_string();
    let response = http.get(&location).send().await.expect("headers arrive");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.content_length(), Some(file.size));
    let mut received = 0u64;
    let mut stream = response;
    let cut = loop {
        match stream.chunk().await {
            Ok(Some(chunk)) => received += chunk.len() as u64,
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(cut, "the body ends in an error");
    assert!(received < file.size, "{received} of {}", file.size);
    let whole = http
        .get(&location)
        .send()
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(Some(sha256(&whole)), file.sha256);
    assert_eq!(sim.stats().fault_count("truncated-body"), 1);
    assert_eq!(sim.stats().fault_count("429"), 1);
}

#[tokio::test]
async fn the_admin_api_adds_content_and_tells_the_truth_about_it() {
    let sim = graph_sim::start(SimConfig::small()).await.expect("start");
    let http = reqwest::Client::new();
    let admin = format!("{}_sim", sim.graph_url());
    let directory = sim.directory();
    let team = &directory.teams[0];
    let channel = &team.channels[0];
    let first: Value =
        common::response_json(http.post(format!("{admin}/channel-messages")).json(&json!({
            "teamId": team.id,
            "channelId": channel.id,
            "from": team.member_ids[0],
            "html": "<p>the plan</p>",
            "files": [{ "name": "Plan.docx", "size": 4096 }],
            "images": [{ "size": 1500 }],
        })))
        .await;
    assert!(first["id"].is_string() && first["conversation"].is_object());
    let content = first["content"].as_array().cloned().unwrap_or_default();
    assert_eq!(content.len(), 2, "{first}");
    let file = content
        .iter()
        .find(|c| c["kind"] == "driveItem")
        .expect("file");
    assert_eq!(file["size"], 4096);
    assert!(file["sha256"].as_str().is_some_and(|s| s.len() == 64));
    assert!(
        file["webUrl"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://contoso.sharepoint.com/sites/")
                && u.contains("/Shared%20Documents/"))
    );
    let reply: Value =
        common::response_json(http.post(format!("{admin}/channel-messages")).json(&json!({
            "teamId": team.id,
            "channelId": channel.id,
            "from": team.member_ids[0],
            "html": "<p>same file</p>",
            "replyTo": first["id"],
            "files": [{ "sharedWith": file["id"] }],
        })))
        .await;
    assert_eq!(reply["content"][0]["id"], file["id"]);
    assert_eq!(
        reply["content"][0]["messages"].as_array().map(Vec::len),
        Some(2)
    );

    let mail: Value = common::response_json(http.post(format!("{admin}/mail")).json(&json!({
        "userId": directory.users[0].id,
        "folderId": "inbox",
        "subject": "with attachments",
        "html": "<p>x</p>",
        "attachments": [
            { "kind": "file", "name": "a.csv", "size": 300 },
            { "kind": "item", "name": "Fwd: b" },
            { "kind": "reference", "name": "c.pptx", "size": 9000 },
        ],
    })))
    .await;
    assert!(
        mail["json"]
            .as_str()
            .is_some_and(|j| j.contains("\"hasAttachments\":true"))
    );
    assert_eq!(mail["attachments"].as_array().map(Vec::len), Some(3));

    let files: Vec<ContentPiece> =
        common::response_json(http.get(format!("{admin}/content?kind=driveItem"))).await;
    assert_eq!(files.len(), 2, "the channel's file and the reference's");
    let of_message: Vec<ContentPiece> = common::response_json(http.get(format!(
        "{admin}/content?messageId={}",
        first["id"].as_str().unwrap_or_default()
    )))
    .await;
    assert_eq!(of_message.len(), 2);
    let all: Vec<ContentPiece> = common::response_json(http.get(format!("{admin}/content"))).await;
    assert!(
        all.iter()
            .all(|p| p.kind == ContentKind::ReferenceAttachment || p.sha256.is_some())
    );
    assert!(all.iter().any(|p| p.kind == ContentKind::MailMime));

    let forbidden: Value = common::response_json(
        http.post(format!("{admin}/content/forbid"))
            .json(&json!({ "id": file["id"] })),
    )
    .await;
    assert_eq!(forbidden["forbidden"], true);
    let deleted: Value = common::response_json(
        http.post(format!("{admin}/content/delete"))
            .json(&json!({ "id": file["id"] })),
    )
    .await;
    assert_eq!(deleted["deleted"], true);
    let unknown = http
        .post(format!("{admin}/content/delete"))
        .json(&json!({ "id": "nope" }))
        .send()
        .await
        .expect("POST");
    assert_eq!(unknown.status().as_u16(), 400);
}

#[tokio::test]
async fn content_is_generated_from_the_seed_and_absent_by_default() {
    let a = graph_sim::start(with_content()).await.expect("start");
    let b = graph_sim::start(with_content()).await.expect("start");
    let digests = |pieces: Vec<ContentPiece>| -> Vec<(String, Option<String>)> {
        pieces.into_iter().map(|p| (p.id, p.sha256)).collect()
    };
    let from_a = digests(a.content());
    assert_eq!(from_a, digests(b.content()));
    let kinds: std::collections::BTreeSet<ContentKind> =
        a.content().into_iter().map(|p| p.kind).collect();
    assert_eq!(kinds.len(), 6, "every kind: {kinds:?}");
    let generated_mail = a
        .snapshot()
        .mail
        .into_iter()
        .filter(|m| m.json.contains("\"hasAttachments\":true"))
        .count();
    assert!(generated_mail > 10, "{generated_mail}");

    let plain = graph_sim::start(SimConfig::small()).await.expect("start");
    assert!(
        plain
            .content()
            .iter()
            .all(|p| p.kind == ContentKind::MailMime),
        "no images, files or attachments unless asked"
    );
    assert!(
        !plain
            .snapshot()
            .messages
            .iter()
            .any(|m| m.json.contains("hostedContents"))
    );
}

#[tokio::test]
async fn a_channel_messages_images_count_against_the_channels_limit() {
    let sim = graph_sim::start(SimConfig::small()).await.expect("start");
    let client = Client::new(&sim).await;
    let directory = sim.directory();
    let team = &directory.teams[0];
    let posted = sim
        .add_channel_message_with(
            &team.id,
            &team.channels[0].id,
            None,
            &team.member_ids[0],
            "<p>chart</p>",
            &NewContent {
                images: vec![NewImage::default()],
                files: Vec::new(),
            },
        )
        .expect("message");
    let image = &posted.content[0];
    assert!(image.url.contains("/teams/") && image.url.contains("/channels/"));
    sim.set_rate_limits(Some(RateLimits {
        channel_requests_per_second: Some(1),
        ..RateLimits::unlimited()
    }));
    let (first, _, _) = get_bytes(&client, &image.url).await;
    let (second, headers, _) = get_bytes(&client, &image.url).await;
    assert_eq!((first, second), (200, 429));
    assert!(headers.contains_key("retry-after"));
    // Downloads are not Graph calls: Graph's limits do not apply to them.
    sim.set_rate_limits(Some(RateLimits::app(1)));
    let file = sim
        .add_chat_message_with(
            &directory.chats[0].id,
            &directory.chats[0].member_ids[0],
            "<p>file</p>",
            &NewContent {
                images: Vec::new(),
                files: vec![NewFile::default()],
            },
        )
        .expect("message")
        .content
        .remove(0);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, item) = client
        .get(&format!(
            "/v1.0/shares/{}/driveItem",
            encode_sharing_url(file.web_url.as_deref().unwrap_or_default())
        ))
        .await;
    assert_eq!(status, 200, "{item}");
    let url = item["@microsoft.graph.downloadUrl"]
        .as_str()
        .unwrap_or_default();
    for _ in 0..3 {
        assert_eq!(anonymous_status(url).await, 200);
    }
}
