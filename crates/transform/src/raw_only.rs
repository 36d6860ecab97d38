//! What Graph sends that no typed column holds: each path is kept in `raw_json` only, with
//! the reason. The column references in `schemas/columns/` list them, and a test checks
//! that every JSON leaf of every docs fixture is in its typed column or covered here.

/// A JSON path (`[]` for any list index) held only by `raw_json`; it covers the paths
/// under it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawOnly {
    pub path: &'static str,
    pub why: &'static str,
}

const ANNOTATION: &str = "an OData annotation of the response, not a property of the message";
const NOT_DECLARED: &str = "not declared on the type in v1.0 or beta";
const DEVICE: &str = "an identity set's device: Teams never fills it";
const NO_SUBTYPES: &str = "`@odata.type` of a type without subtypes: it names nothing new";

/// `chat_messages`.
pub const CHAT_MESSAGES_RAW_ONLY: &[RawOnly] = &[
    RawOnly {
        path: "@odata.context",
        why: ANNOTATION,
    },
    RawOnly {
        path: "@microsoft.graph.tips",
        why: ANNOTATION,
    },
    RawOnly {
        path: "replies@odata.count",
        why: ANNOTATION,
    },
    RawOnly {
        path: "replies@odata.nextLink",
        why: ANNOTATION,
    },
    RawOnly {
        path: "replies",
        why: "expanded replies are rows of their own (their `reply_to_id` is this message's `id`)",
    },
    RawOnly {
        path: "attachments[].@odata.type",
        why: NO_SUBTYPES,
    },
    RawOnly {
        path: "body.@odata.type",
        why: NO_SUBTYPES,
    },
    RawOnly {
        path: "channelIdentity.@odata.type",
        why: NO_SUBTYPES,
    },
    RawOnly {
        path: "from.@odata.type",
        why: NO_SUBTYPES,
    },
    RawOnly {
        path: "mentions[].@odata.type",
        why: NO_SUBTYPES,
    },
    RawOnly {
        path: "onBehalfOf.@odata.type",
        why: NO_SUBTYPES,
    },
    RawOnly {
        path: "policyViolation.@odata.type",
        why: NO_SUBTYPES,
    },
    RawOnly {
        path: "reactions[].@odata.type",
        why: NO_SUBTYPES,
    },
    RawOnly {
        path: "from.device",
        why: DEVICE,
    },
    RawOnly {
        path: "onBehalfOf.device",
        why: DEVICE,
    },
    RawOnly {
        path: "mentions[].mentioned.device",
        why: DEVICE,
    },
    RawOnly {
        path: "reactions[].user.device",
        why: DEVICE,
    },
    RawOnly {
        path: "eventDetail.initiator.device",
        why: DEVICE,
    },
    RawOnly {
        path: "eventDetail.meetingOrganizer.device",
        why: DEVICE,
    },
    RawOnly {
        path: "eventDetail.callParticipants[].participant.device",
        why: DEVICE,
    },
    RawOnly {
        path: "from.conversation",
        why: NOT_DECLARED,
    },
    RawOnly {
        path: "deleted",
        why: NOT_DECLARED,
    },
    RawOnly {
        path: "isDeleted",
        why: NOT_DECLARED,
    },
];

/// `mail_messages`.
pub const MAIL_MESSAGES_RAW_ONLY: &[RawOnly] = &[
    RawOnly {
        path: "@odata.context",
        why: ANNOTATION,
    },
    RawOnly {
        path: "@odata.etag",
        why: ANNOTATION,
    },
    RawOnly {
        path: "@odata.id",
        why: ANNOTATION,
    },
    RawOnly {
        path: "flag.@odata.type",
        why: NO_SUBTYPES,
    },
    RawOnly {
        path: "uniqueBody.@odata.type",
        why: NO_SUBTYPES,
    },
    RawOnly {
        path: "body.@odata.type",
        why: NO_SUBTYPES,
    },
    RawOnly {
        path: "internetMessageHeaders[].@odata.type",
        why: NO_SUBTYPES,
    },
    RawOnly {
        path: "sender.@odata.type",
        why: "`@odata.type` of a recipient: a sender or recipient is never one of its subtypes (attendee)",
    },
    RawOnly {
        path: "from.@odata.type",
        why: "`@odata.type` of a recipient: a sender or recipient is never one of its subtypes (attendee)",
    },
    RawOnly {
        path: "toRecipients[].@odata.type",
        why: "`@odata.type` of a recipient: a sender or recipient is never one of its subtypes (attendee)",
    },
    RawOnly {
        path: "ccRecipients[].@odata.type",
        why: "`@odata.type` of a recipient: a sender or recipient is never one of its subtypes (attendee)",
    },
    RawOnly {
        path: "bccRecipients[].@odata.type",
        why: "`@odata.type` of a recipient: a sender or recipient is never one of its subtypes (attendee)",
    },
    RawOnly {
        path: "replyTo[].@odata.type",
        why: "`@odata.type` of a recipient: a sender or recipient is never one of its subtypes (attendee)",
    },
    RawOnly {
        path: "attachments",
        why: "a navigation property; Graph returns it only when asked to expand it",
    },
    RawOnly {
        path: "extensions",
        why: "a navigation property; Graph returns it only when asked to expand it",
    },
    RawOnly {
        path: "multiValueExtendedProperties",
        why: "a navigation property; Graph returns it only when asked to expand it",
    },
    RawOnly {
        path: "singleValueExtendedProperties",
        why: "a navigation property; Graph returns it only when asked to expand it",
    },
    RawOnly {
        path: "mentions",
        why: "a beta property of mail, not in v1.0",
    },
    RawOnly {
        path: "mentionsPreview",
        why: "a beta property of mail, not in v1.0",
    },
    RawOnly {
        path: "unsubscribeData",
        why: "a beta property of mail, not in v1.0",
    },
    RawOnly {
        path: "unsubscribeEnabled",
        why: "a beta property of mail, not in v1.0",
    },
];

/// Whether `path` (a leaf path, `[]` for any index) is `entry.path` or under it.
pub fn covers(entry: &RawOnly, path: &str) -> bool {
    path.strip_prefix(entry.path)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}
