//! The JSON documents Graph returns, with properties in Graph's order and explicit nulls.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A chatMessage resource (v1.0 shape, as getAllMessages and delta return it).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChatMessageDoc {
    #[serde(rename = "@odata.type")]
    pub odata_type: String,
    pub id: String,
    pub reply_to_id: Option<String>,
    pub etag: String,
    pub message_type: String,
    pub created_date_time: String,
    pub last_modified_date_time: String,
    pub last_edited_date_time: Option<String>,
    pub deleted_date_time: Option<String>,
    pub subject: Option<String>,
    pub summary: Option<String>,
    pub chat_id: Option<String>,
    pub importance: String,
    pub locale: String,
    pub web_url: Option<String>,
    pub channel_identity: Option<ChannelIdentity>,
    pub policy_violation: Option<Value>,
    pub event_detail: Option<Value>,
    pub from: Option<Value>,
    pub body: ItemBody,
    pub attachments: Vec<Value>,
    pub mentions: Vec<Value>,
    pub reactions: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_history: Option<Vec<Value>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChannelIdentity {
    pub team_id: String,
    pub channel_id: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ItemBody {
    pub content_type: String,
    pub content: String,
}

impl ItemBody {
    pub(crate) fn html(content: impl Into<String>) -> ItemBody {
        ItemBody {
            content_type: "html".into(),
            content: content.into(),
        }
    }

    pub(crate) fn text(content: impl Into<String>) -> ItemBody {
        ItemBody {
            content_type: "text".into(),
            content: content.into(),
        }
    }
}

/// An Outlook message resource (the default property set of a mail delta item).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MailDoc {
    #[serde(rename = "@odata.type")]
    pub odata_type: String,
    #[serde(rename = "@odata.etag")]
    pub odata_etag: String,
    pub id: String,
    pub created_date_time: String,
    pub last_modified_date_time: String,
    pub change_key: String,
    pub categories: Vec<String>,
    pub received_date_time: String,
    pub sent_date_time: String,
    pub has_attachments: bool,
    pub internet_message_id: String,
    pub subject: String,
    pub body_preview: String,
    pub importance: String,
    pub parent_folder_id: String,
    pub conversation_id: String,
    pub conversation_index: String,
    pub is_delivery_receipt_requested: Option<bool>,
    pub is_read_receipt_requested: bool,
    pub is_read: bool,
    pub is_draft: bool,
    pub web_link: String,
    pub inference_classification: String,
    pub body: ItemBody,
    pub sender: Value,
    pub from: Value,
    pub to_recipients: Vec<Value>,
    pub cc_recipients: Vec<Value>,
    pub bcc_recipients: Vec<Value>,
    pub reply_to: Vec<Value>,
    pub flag: Value,
}

/// Property order of a mail message, for `$select` projections.
pub(crate) const MAIL_PROPERTIES: &[&str] = &[
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "conversationIndex",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "isRead",
    "isDraft",
    "webLink",
    "inferenceClassification",
    "body",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "flag",
];

pub(crate) fn user_identity(id: &str, display_name: Option<&str>, tenant_id: &str) -> Value {
    json!({
        "application": null,
        "device": null,
        "user": {
            "@odata.type": "#microsoft.graph.teamworkUserIdentity",
            "id": id,
            "displayName": display_name,
            "userIdentityType": "aadUser",
            "tenantId": tenant_id,
        }
    })
}

pub(crate) fn bot_identity(id: &str, display_name: &str) -> Value {
    json!({
        "application": {
            "@odata.type": "#microsoft.graph.teamworkApplicationIdentity",
            "id": id,
            "displayName": display_name,
            "applicationIdentityType": "bot",
        },
        "device": null,
        "user": null
    })
}

/// The short identity used inside event details (`initiator`, `members`).
pub(crate) fn bare_user(id: &str, display_name: Option<&str>) -> Value {
    json!({ "id": id, "displayName": display_name, "userIdentityType": "aadUser" })
}

pub(crate) fn email_address(name: &str, address: &str) -> Value {
    json!({ "emailAddress": { "name": name, "address": address } })
}

/// A page of a collection: `@odata.context`, optional count and links, then `value`,
/// the items' bytes spliced in as they are stored.
pub(crate) fn collection_page(
    context: &str,
    count: Option<usize>,
    next_link: Option<&str>,
    delta_link: Option<&str>,
    items: &[bytes::Bytes],
) -> Vec<u8> {
    let size: usize = items.iter().map(|i| i.len() + 1).sum::<usize>() + 512;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(b"{\"@odata.context\":");
    out.extend_from_slice(json_string(context).as_bytes());
    if let Some(count) = count {
        out.extend_from_slice(format!(",\"@odata.count\":{count}").as_bytes());
    }
    if let Some(link) = next_link {
        out.extend_from_slice(b",\"@odata.nextLink\":");
        out.extend_from_slice(json_string(link).as_bytes());
    }
    if let Some(link) = delta_link {
        out.extend_from_slice(b",\"@odata.deltaLink\":");
        out.extend_from_slice(json_string(link).as_bytes());
    }
    out.extend_from_slice(b",\"value\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.extend_from_slice(b"]}");
    out
}

pub(crate) fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string())
}

/// Write a document as Graph's compact JSON.
pub(crate) fn to_bytes<T: Serialize>(doc: &T) -> bytes::Bytes {
    // Serialising plain structs of strings and JSON values cannot fail.
    bytes::Bytes::from(serde_json::to_vec(doc).unwrap_or_default())
}
