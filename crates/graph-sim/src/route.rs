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
            Endpoint::Users
            | Endpoint::MailFolders { .. }
            | Endpoint::MailFolder { .. }
            | Endpoint::MailDelta { .. } => None,
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
            _ => (None, None),
        };
        let mailbox = match self {
            Endpoint::MailFolders { user, .. }
            | Endpoint::MailFolder { user, .. }
            | Endpoint::MailDelta { user, .. } => Some(user.clone()),
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
