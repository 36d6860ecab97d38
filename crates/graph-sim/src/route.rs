//! Which Graph resource a request path addresses.
//!
//! Graph accepts a key either as a path segment (`/teams/{id}/channels/{id}`) or in OData
//! key syntax (`/teams('{id}')/channels('{id}')`), and its own links use both (the
//! getAllMessages nextLinks in Microsoft's docs are `teams('{id}')/channels/getallMessages`).
//! Segment names are case-insensitive; keys are percent-decoded and kept as written.

use percent_encoding::percent_decode_str;

use crate::faults::EndpointKind;
use crate::limits::{Buckets, RequestType};

/// A Graph resource a request addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Users,
    Teams,
    /// `/teams/{id}/allChannels` (and `/channels`).
    Channels {
        team: String,
    },
    /// `/users/{id}/mailFolders` (`parent: None`) or `.../mailFolders/{id}/childFolders`.
    MailFolders {
        user: String,
        parent: Option<String>,
    },
    /// `/users/{id}/mailFolders/{id or well-known name}`.
    MailFolder {
        user: String,
        folder: String,
    },
    UserChats {
        user: String,
    },
    /// `/users/{id}/chats/getAllMessages`.
    ChatWindow {
        user: String,
    },
    /// `/users/{id}/chats/getAllMessages/delta`.
    ChatDelta {
        user: String,
    },
    /// `/teams/{id}/channels/getAllMessages`: roots and replies of every channel.
    TeamWindow {
        team: String,
    },
    /// `/teams/{id}/channels/{id}/messages`: the root messages, all history.
    ChannelMessages {
        team: String,
        channel: String,
    },
    ChannelDelta {
        team: String,
        channel: String,
    },
    Replies {
        team: String,
        channel: String,
        message: String,
    },
    MailDelta {
        user: String,
        folder: String,
    },
    /// `.../messages/{id}/hostedContents`, `.../hostedContents/{id}` and its `/$value`.
    HostedContents {
        message: MessagePath,
        id: Option<String>,
        value: bool,
    },
    /// `/shares/{share id}/driveItem` and its `/content`.
    SharedDriveItem {
        share: String,
        content: bool,
    },
    /// `/drives/{id}/items/{id}` and its `/content`.
    DriveItem {
        drive: String,
        item: String,
        content: bool,
    },
    /// `/users/{id}/messages/{id}/attachments`, `.../attachments/{id}` and its `/$value`
    /// (also below `mailFolders/{id}`, with any `childFolders/{id}`).
    MailAttachments {
        user: String,
        folder: Option<String>,
        message: String,
        id: Option<String>,
        value: bool,
    },
    /// `/users/{id}/messages/{id}/$value`: the item's MIME.
    MailMime {
        user: String,
        folder: Option<String>,
        message: String,
    },
}

/// The chat or channel message a hosted content URL names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MessagePath {
    /// `/chats/{id}/messages/{id}` (or `/users/{id}/chats/{id}/messages/{id}`).
    Chat { chat: String, message: String },
    /// `/teams/{id}/channels/{id}/messages/{id}`.
    Channel {
        team: String,
        channel: String,
        message: String,
    },
    /// `/teams/{id}/channels/{id}/messages/{id}/replies/{id}`.
    Reply {
        team: String,
        channel: String,
        root: String,
        reply: String,
    },
}

/// `hostedContents`, `hostedContents/{id}` or `hostedContents/{id}/$value` after a message.
fn hosted_tail(message: MessagePath, names: &[String], rest: &[String]) -> Option<Endpoint> {
    let name = |i: usize| names.get(i).map(String::as_str);
    if name(0) != Some("hostedcontents") {
        return None;
    }
    let (id, value) = match rest.len() {
        1 => (None, false),
        2 => (Some(rest[1].clone()), false),
        3 if name(2) == Some("$value") => (Some(rest[1].clone()), true),
        _ => return None,
    };
    Some(Endpoint::HostedContents { message, id, value })
}

/// Content endpoints: hosted contents, shared files and drive items, mail attachments and
/// MIME. `rest` follows the version; `names` are its segments lowercased.
fn content_endpoint(rest: &[String], names: &[String]) -> Option<Endpoint> {
    let name = |i: usize| names.get(i).map(String::as_str);
    let key = |i: usize| rest.get(i).cloned();
    match name(0)? {
        "chats" if name(2) == Some("messages") && rest.len() > 4 => {
            let message = MessagePath::Chat {
                chat: key(1)?,
                message: key(3)?,
            };
            hosted_tail(message, &names[4..], &rest[4..])
        }
        "users" if name(2) == Some("chats") && name(4) == Some("messages") && rest.len() > 6 => {
            let message = MessagePath::Chat {
                chat: key(3)?,
                message: key(5)?,
            };
            hosted_tail(message, &names[6..], &rest[6..])
        }
        "teams" if name(2) == Some("channels") && name(4) == Some("messages") => {
            if name(6) == Some("replies") && rest.len() > 8 {
                let message = MessagePath::Reply {
                    team: key(1)?,
                    channel: key(3)?,
                    root: key(5)?,
                    reply: key(7)?,
                };
                hosted_tail(message, &names[8..], &rest[8..])
            } else if rest.len() > 6 {
                let message = MessagePath::Channel {
                    team: key(1)?,
                    channel: key(3)?,
                    message: key(5)?,
                };
                hosted_tail(message, &names[6..], &rest[6..])
            } else {
                None
            }
        }
        "shares" if name(2) == Some("driveitem") => match rest.len() {
            3 => Some(Endpoint::SharedDriveItem {
                share: key(1)?,
                content: false,
            }),
            4 if name(3) == Some("content") => Some(Endpoint::SharedDriveItem {
                share: key(1)?,
                content: true,
            }),
            _ => None,
        },
        "drives" if name(2) == Some("items") => match rest.len() {
            4 => Some(Endpoint::DriveItem {
                drive: key(1)?,
                item: key(3)?,
                content: false,
            }),
            5 if name(4) == Some("content") => Some(Endpoint::DriveItem {
                drive: key(1)?,
                item: key(3)?,
                content: true,
            }),
            _ => None,
        },
        "users" => {
            let user = key(1)?;
            // `messages/{id}` directly, or below a folder and any number of child folders.
            let mut at = 2;
            let mut folder = None;
            if name(at) == Some("mailfolders") {
                folder = Some(key(at + 1)?);
                at += 2;
                while name(at) == Some("childfolders") {
                    folder = Some(key(at + 1)?);
                    at += 2;
                }
            }
            if name(at) != Some("messages") {
                return None;
            }
            let message = key(at + 1)?;
            let tail: Vec<&str> = names[(at + 2).min(names.len())..]
                .iter()
                .map(String::as_str)
                .collect();
            match tail.as_slice() {
                ["$value"] => Some(Endpoint::MailMime {
                    user,
                    folder,
                    message,
                }),
                ["attachments"] => Some(Endpoint::MailAttachments {
                    user,
                    folder,
                    message,
                    id: None,
                    value: false,
                }),
                ["attachments", _] => Some(Endpoint::MailAttachments {
                    user,
                    folder,
                    message,
                    id: key(at + 3),
                    value: false,
                }),
                ["attachments", _, "$value"] => Some(Endpoint::MailAttachments {
                    user,
                    folder,
                    message,
                    id: key(at + 3),
                    value: true,
                }),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Split a path into segments, expanding `name('key')` into `name` and `key`.
fn segments(path: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        let segment = percent_decode_str(raw).decode_utf8().ok()?.into_owned();
        match segment.find("('") {
            Some(open) if segment.ends_with("')") && open > 0 => {
                out.push(segment[..open].to_string());
                // OData doubles a quote inside a key.
                out.push(segment[open + 2..segment.len() - 2].replace("''", "'"));
            }
            _ => out.push(segment),
        }
    }
    Some(out)
}

impl Endpoint {
    /// The version (`v1.0` or `beta`) and resource of a request path, if Graph serves it.
    pub(crate) fn parse(path: &str) -> Option<(String, Endpoint)> {
        let segments = segments(path)?;
        let (version, rest) = segments.split_first()?;
        if version != "v1.0" && version != "beta" {
            return None;
        }
        let names: Vec<String> = rest.iter().map(|s| s.to_ascii_lowercase()).collect();
        if let Some(endpoint) = content_endpoint(rest, &names) {
            return Some((version.clone(), endpoint));
        }
        let name = |i: usize| names.get(i).map(String::as_str);
        let key = |i: usize| rest[i].clone();
        let endpoint = match (rest.len(), name(0)) {
            (1, Some("users")) => Endpoint::Users,
            (1, Some("teams")) => Endpoint::Teams,
            (3, Some("teams")) if matches!(name(2), Some("allchannels" | "channels")) => {
                Endpoint::Channels { team: key(1) }
            }
            (4, Some("teams")) if name(2) == Some("channels") => match name(3) {
                Some("getallmessages") => Endpoint::TeamWindow { team: key(1) },
                _ => return None,
            },
            (5, Some("teams")) if name(2) == Some("channels") && name(4) == Some("messages") => {
                Endpoint::ChannelMessages {
                    team: key(1),
                    channel: key(3),
                }
            }
            (6, Some("teams"))
                if name(2) == Some("channels")
                    && name(4) == Some("messages")
                    && name(5) == Some("delta") =>
            {
                Endpoint::ChannelDelta {
                    team: key(1),
                    channel: key(3),
                }
            }
            (7, Some("teams"))
                if name(2) == Some("channels")
                    && name(4) == Some("messages")
                    && name(6) == Some("replies") =>
            {
                Endpoint::Replies {
                    team: key(1),
                    channel: key(3),
                    message: key(5),
                }
            }
            (3, Some("users")) => match name(2) {
                Some("mailfolders") => Endpoint::MailFolders {
                    user: key(1),
                    parent: None,
                },
                Some("chats") => Endpoint::UserChats { user: key(1) },
                _ => return None,
            },
            (4, Some("users")) => match (name(2), name(3)) {
                (Some("mailfolders"), _) => Endpoint::MailFolder {
                    user: key(1),
                    folder: key(3),
                },
                (Some("chats"), Some("getallmessages")) => Endpoint::ChatWindow { user: key(1) },
                _ => return None,
            },
            (5, Some("users")) => match (name(2), name(3), name(4)) {
                (Some("mailfolders"), _, Some("childfolders")) => Endpoint::MailFolders {
                    user: key(1),
                    parent: Some(key(3)),
                },
                (Some("chats"), Some("getallmessages"), Some("delta")) => {
                    Endpoint::ChatDelta { user: key(1) }
                }
                _ => return None,
            },
            (6, Some("users"))
                if name(2) == Some("mailfolders")
                    && name(4) == Some("messages")
                    && name(5) == Some("delta") =>
            {
                Endpoint::MailDelta {
                    user: key(1),
                    folder: key(3),
                }
            }
            _ => return None,
        };
        Some((version.clone(), endpoint))
    }

    /// What messages point to, served by `content_api`.
    pub(crate) fn is_content(&self) -> bool {
        matches!(
            self,
            Endpoint::HostedContents { .. }
                | Endpoint::SharedDriveItem { .. }
                | Endpoint::DriveItem { .. }
                | Endpoint::MailAttachments { .. }
                | Endpoint::MailMime { .. }
        )
    }

    pub(crate) fn kind(&self) -> EndpointKind {
        match self {
            Endpoint::Users => EndpointKind::Users,
            Endpoint::Teams => EndpointKind::Teams,
            Endpoint::Channels { .. } => EndpointKind::Channels,
            Endpoint::MailFolders { .. } => EndpointKind::MailFolders,
            Endpoint::MailFolder { .. } => EndpointKind::MailFolder,
            Endpoint::UserChats { .. } => EndpointKind::UserChats,
            Endpoint::ChatWindow { .. } => EndpointKind::ChatMessagesWindow,
            Endpoint::ChatDelta { .. } => EndpointKind::ChatMessagesDelta,
            Endpoint::TeamWindow { .. } => EndpointKind::TeamMessagesWindow,
            Endpoint::ChannelMessages { .. } => EndpointKind::ChannelMessages,
            Endpoint::ChannelDelta { .. } => EndpointKind::ChannelMessagesDelta,
            Endpoint::Replies { .. } => EndpointKind::Replies,
            Endpoint::MailDelta { .. } => EndpointKind::MailDelta,
            Endpoint::HostedContents { value: false, .. } => EndpointKind::HostedContents,
            Endpoint::HostedContents { value: true, .. } => EndpointKind::HostedContentValue,
            Endpoint::SharedDriveItem { content: false, .. }
            | Endpoint::DriveItem { content: false, .. } => EndpointKind::DriveItem,
            Endpoint::SharedDriveItem { content: true, .. }
            | Endpoint::DriveItem { content: true, .. } => EndpointKind::DriveItemContent,
            Endpoint::MailAttachments { value: false, .. } => EndpointKind::MailAttachments,
            Endpoint::MailAttachments { value: true, .. } => EndpointKind::MailAttachmentValue,
            Endpoint::MailMime { .. } => EndpointKind::MailMime,
        }
    }

    /// The limits a request counts against: its Teams request type, the team every URL
    /// naming a team counts against (whatever its form), the channel, the mailbox.
    pub(crate) fn buckets(&self) -> Buckets {
        let request_type = match self {
            Endpoint::ChatWindow { .. } | Endpoint::ChatDelta { .. } => {
                Some(RequestType::ChatMessagesExport)
            }
            Endpoint::TeamWindow { .. } => Some(RequestType::ChannelMessagesExport),
            Endpoint::ChannelMessages { .. }
            | Endpoint::ChannelDelta { .. }
            | Endpoint::Replies { .. } => Some(RequestType::ChannelMessage),
            Endpoint::Channels { .. } => Some(RequestType::Channels),
            Endpoint::Teams | Endpoint::UserChats { .. } => Some(RequestType::OtherTeamsGet),
            // A channel message's content is a GET on the channel message; a chat's, another
            // Teams GET.
            Endpoint::HostedContents { message, .. } => match message {
                MessagePath::Chat { .. } => Some(RequestType::OtherTeamsGet),
                _ => Some(RequestType::ChannelMessage),
            },
            Endpoint::Users
            | Endpoint::MailFolders { .. }
            | Endpoint::MailFolder { .. }
            | Endpoint::MailDelta { .. }
            | Endpoint::SharedDriveItem { .. }
            | Endpoint::DriveItem { .. }
            | Endpoint::MailAttachments { .. }
            | Endpoint::MailMime { .. } => None,
        };
        let (team, channel) = match self {
            Endpoint::Channels { team } | Endpoint::TeamWindow { team } => {
                (Some(team.clone()), None)
            }
            Endpoint::ChannelMessages { team, channel }
            | Endpoint::ChannelDelta { team, channel }
            | Endpoint::Replies { team, channel, .. } => {
                (Some(team.clone()), Some(format!("{team}/{channel}")))
            }
            Endpoint::HostedContents {
                message:
                    MessagePath::Channel { team, channel, .. }
                    | MessagePath::Reply { team, channel, .. },
                ..
            } => (Some(team.clone()), Some(format!("{team}/{channel}"))),
            _ => (None, None),
        };
        let mailbox = match self {
            Endpoint::MailFolders { user, .. }
            | Endpoint::MailFolder { user, .. }
            | Endpoint::MailDelta { user, .. }
            | Endpoint::MailAttachments { user, .. }
            | Endpoint::MailMime { user, .. } => Some(user.clone()),
            _ => None,
        };
        Buckets {
            request_type,
            team,
            channel,
            mailbox,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_syntax_and_path_segments_address_the_same_resource() {
        let plain =
            Endpoint::parse("/v1.0/teams/T1/channels/19:abc@thread.tacv2/messages/1616/replies");
        let keyed = Endpoint::parse(
            "/v1.0/teams('T1')/channels('19%3Aabc%40thread.tacv2')/messages('1616')/replies",
        );
        assert_eq!(plain, keyed);
        assert_eq!(
            plain,
            Some((
                "v1.0".into(),
                Endpoint::Replies {
                    team: "T1".into(),
                    channel: "19:abc@thread.tacv2".into(),
                    message: "1616".into(),
                }
            ))
        );
        assert_eq!(
            Endpoint::parse("/v1.0/teams('T1')/channels/getallMessages"),
            Some(("v1.0".into(), Endpoint::TeamWindow { team: "T1".into() }))
        );
        assert_eq!(
            Endpoint::parse("/beta/users/U1/chats/getAllMessages/delta"),
            Some(("beta".into(), Endpoint::ChatDelta { user: "U1".into() }))
        );
        assert_eq!(Endpoint::parse("/v1.0/no/such/thing"), None);
        assert_eq!(Endpoint::parse("/v2/users"), None);
    }

    #[test]
    fn content_urls_parse_in_either_key_form() {
        let hosted = Endpoint::parse(
            "/v1.0/chats/19:abc@thread.v2/messages/1616/hostedContents/aWQ9eF8w/$value",
        );
        assert_eq!(
            hosted,
            Endpoint::parse(
                "/v1.0/chats('19%3Aabc%40thread.v2')/messages('1616')/hostedContents('aWQ9eF8w')/%24value"
            )
        );
        assert_eq!(
            hosted,
            Some((
                "v1.0".into(),
                Endpoint::HostedContents {
                    message: MessagePath::Chat {
                        chat: "19:abc@thread.v2".into(),
                        message: "1616".into()
                    },
                    id: Some("aWQ9eF8w".into()),
                    value: true,
                }
            ))
        );
        assert_eq!(
            hosted,
            Endpoint::parse(
                "/v1.0/users/U/chats/19:abc@thread.v2/messages/1616/hostedContents/aWQ9eF8w/$value"
            )
        );
        assert_eq!(
            Endpoint::parse("/beta/teams/T/channels/C/messages/1/replies/2/hostedContents"),
            Some((
                "beta".into(),
                Endpoint::HostedContents {
                    message: MessagePath::Reply {
                        team: "T".into(),
                        channel: "C".into(),
                        root: "1".into(),
                        reply: "2".into()
                    },
                    id: None,
                    value: false,
                }
            ))
        );
        assert!(matches!(
            Endpoint::parse("/v1.0/teams/T/channels/C/messages/1/hostedContents/H/$value"),
            Some((
                _,
                Endpoint::HostedContents {
                    message: MessagePath::Channel { .. },
                    value: true,
                    ..
                }
            ))
        ));
        assert_eq!(
            Endpoint::parse("/v1.0/shares/u!aHR0cHM/driveItem/content"),
            Some((
                "v1.0".into(),
                Endpoint::SharedDriveItem {
                    share: "u!aHR0cHM".into(),
                    content: true
                }
            ))
        );
        assert_eq!(
            Endpoint::parse("/v1.0/drives/b!x/items/01AB/content"),
            Some((
                "v1.0".into(),
                Endpoint::DriveItem {
                    drive: "b!x".into(),
                    item: "01AB".into(),
                    content: true
                }
            ))
        );
        assert_eq!(
            Endpoint::parse(
                "/v1.0/users/U/mailFolders/inbox/childFolders/F/messages/M/attachments/A/$value"
            ),
            Some((
                "v1.0".into(),
                Endpoint::MailAttachments {
                    user: "U".into(),
                    folder: Some("F".into()),
                    message: "M".into(),
                    id: Some("A".into()),
                    value: true
                }
            ))
        );
        assert_eq!(
            Endpoint::parse("/v1.0/users('U')/messages('M')/$value"),
            Some((
                "v1.0".into(),
                Endpoint::MailMime {
                    user: "U".into(),
                    folder: None,
                    message: "M".into()
                }
            ))
        );
        // Existing mail delta is not taken for a message id.
        assert!(matches!(
            Endpoint::parse("/v1.0/users/U/mailFolders/F/messages/delta"),
            Some((_, Endpoint::MailDelta { .. }))
        ));
        let (_, channel_image) =
            Endpoint::parse("/v1.0/teams/T/channels/C/messages/1/hostedContents/H/$value")
                .expect("parses");
        assert_eq!(channel_image.buckets().channel.as_deref(), Some("T/C"));
    }

    #[test]
    fn every_url_naming_a_team_counts_against_it() {
        for path in [
            "/v1.0/teams/T1/allChannels",
            "/v1.0/teams('T1')/channels/getAllMessages",
            "/v1.0/teams('T1')/channels('C')/messages/delta",
            "/v1.0/teams/T1/channels/C/messages",
        ] {
            let (_, endpoint) = Endpoint::parse(path).expect(path);
            assert_eq!(endpoint.buckets().team.as_deref(), Some("T1"), "{path}");
        }
    }
}
