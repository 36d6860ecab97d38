//! Who is who and which chat is which, from the archive's `directory/users` and
//! `directory/chats` snapshots (the latest snapshot of each id wins).

use std::collections::HashMap;

use arrow::record_batch::RecordBatch;

use crate::columns::{Strings, Times};

/// `directory/users` columns an export reads.
pub(crate) const USER_COLUMNS: &[&str] = &[
    "id",
    "display_name",
    "mail",
    "user_principal_name",
    "content_sha256",
    "fetched_at",
];

/// `directory/chats` columns an export reads (members come from `raw_json`).
pub(crate) const CHAT_COLUMNS: &[&str] = &[
    "id",
    "topic",
    "chat_type",
    "raw_json",
    "content_sha256",
    "fetched_at",
];

/// A user as the directory knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub id: String,
    pub display_name: Option<String>,
    pub mail: Option<String>,
    pub user_principal_name: Option<String>,
}

/// A chat: its topic, type and members (user id, display name, email).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectoryChat {
    pub topic: Option<String>,
    pub chat_type: Option<String>,
    pub members: Vec<ChatMember>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMember {
    pub user_id: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
}

/// Someone who took part in a conversation: a user, an app or bot, or an id only.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Person {
    /// The Graph user or application id.
    pub id: String,
    pub display: String,
    pub email: Option<String>,
}

#[derive(Debug, Default)]
pub struct Directory {
    users: HashMap<String, (Stamp, DirectoryUser)>,
    chats: HashMap<String, (Stamp, DirectoryChat)>,
}

/// Which snapshot is newer: fetch time, then content hash (so the choice is stable).
type Stamp = (Option<i64>, String);

impl Directory {
    pub fn user(&self, id: &str) -> Option<&DirectoryUser> {
        self.users.get(id).map(|(_, user)| user)
    }

    pub fn chat(&self, id: &str) -> Option<&DirectoryChat> {
        self.chats.get(id).map(|(_, chat)| chat)
    }

    /// A person by Graph id, named from the directory, else from what the message said,
    /// else by the id itself.
    pub fn person(&self, id: &str, seen_name: Option<&str>) -> Person {
        let user = self.user(id);
        let display = user
            .and_then(|u| u.display_name.clone())
            .or_else(|| seen_name.map(str::to_string))
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| id.to_string());
        let email = user
            .and_then(|u| u.mail.clone().or_else(|| u.user_principal_name.clone()))
            .filter(|e| looks_like_email(e));
        Person {
            id: id.to_string(),
            display,
            email,
        }
    }

    /// A custodian named by Graph id, userPrincipalName or mail address.
    pub fn resolve_custodian(&self, value: &str) -> Result<String, String> {
        if self.users.contains_key(value) {
            return Ok(value.to_string());
        }
        let wanted = value.to_lowercase();
        let mut matches: Vec<&str> = self
            .users
            .values()
            .filter(|(_, u)| {
                [&u.user_principal_name, &u.mail]
                    .into_iter()
                    .flatten()
                    .any(|name| name.to_lowercase() == wanted)
            })
            .map(|(_, u)| u.id.as_str())
            .collect();
        matches.sort_unstable();
        matches.dedup();
        match matches.as_slice() {
            [one] => Ok((*one).to_string()),
            [] if !value.contains('@') => Ok(value.to_string()),
            [] => Err(format!(
                "--custodian {value}: no user with that userPrincipalName or mail in the archive's directory/users ({} users); give the Graph user id instead",
                self.users.len()
            )),
            several => Err(format!(
                "--custodian {value}: names several users ({}); give the Graph user id instead",
                several.join(", ")
            )),
        }
    }

    pub(crate) fn add_users(&mut self, batch: &RecordBatch) -> Result<(), String> {
        let id = Strings::required(batch, "id")?;
        let display = Strings::of(batch, "display_name")?;
        let mail = Strings::of(batch, "mail")?;
        let upn = Strings::of(batch, "user_principal_name")?;
        let sha = Strings::of(batch, "content_sha256")?;
        let fetched = Times::of(batch, "fetched_at")?;
        for row in 0..batch.num_rows() {
            let Some(user_id) = id.get(row) else {
                return Err(format!("row {row}: id is null"));
            };
            let stamp = (fetched.get(row), sha.string(row).unwrap_or_default());
            let user = DirectoryUser {
                id: user_id.to_string(),
                display_name: display.string(row),
                mail: mail.string(row),
                user_principal_name: upn.string(row),
            };
            keep_newest(&mut self.users, user_id, stamp, user);
        }
        Ok(())
    }

    pub(crate) fn add_chats(&mut self, batch: &RecordBatch) -> Result<(), String> {
        let id = Strings::required(batch, "id")?;
        let topic = Strings::of(batch, "topic")?;
        let chat_type = Strings::of(batch, "chat_type")?;
        let raw = Strings::of(batch, "raw_json")?;
        let sha = Strings::of(batch, "content_sha256")?;
        let fetched = Times::of(batch, "fetched_at")?;
        for row in 0..batch.num_rows() {
            let Some(chat_id) = id.get(row) else {
                return Err(format!("row {row}: id is null"));
            };
            let members = match raw.get(row) {
                Some(json) => members_of(json).map_err(|e| format!("chat {chat_id}: {e}"))?,
                None => Vec::new(),
            };
            let stamp = (fetched.get(row), sha.string(row).unwrap_or_default());
            let chat = DirectoryChat {
                topic: topic.string(row).filter(|t| !t.trim().is_empty()),
                chat_type: chat_type.string(row),
                members,
            };
            keep_newest(&mut self.chats, chat_id, stamp, chat);
        }
        Ok(())
    }
}

fn keep_newest<T>(map: &mut HashMap<String, (Stamp, T)>, id: &str, stamp: Stamp, value: T) {
    match map.get(id) {
        Some((existing, _)) if *existing >= stamp => {}
        _ => {
            map.insert(id.to_string(), (stamp, value));
        }
    }
}

/// The members of a chat item (`$expand=members`), as Graph sent them.
fn members_of(json: &str) -> Result<Vec<ChatMember>, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("raw_json is not JSON: {e}"))?;
    let Some(members) = value.get("members").and_then(|m| m.as_array()) else {
        return Ok(Vec::new());
    };
    let text = |m: &serde_json::Value, key: &str| {
        m.get(key)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let mut out: Vec<ChatMember> = members
        .iter()
        .filter_map(|m| {
            Some(ChatMember {
                user_id: text(m, "userId")?,
                display_name: text(m, "displayName"),
                email: text(m, "email").filter(|e| looks_like_email(e)),
            })
        })
        .collect();
    out.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    out.dedup_by(|a, b| a.user_id == b.user_id);
    Ok(out)
}

/// An address RSMF's `idn-email` format accepts: one `@`, something on both sides, no
/// spaces or angle brackets.
pub(crate) fn looks_like_email(value: &str) -> bool {
    let mut parts = value.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value
            .chars()
            .any(|c| c.is_whitespace() || "<>()[],;:\"\\".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> Directory {
        let mut d = Directory::default();
        for (id, name, mail, upn, at) in [
            ("u1", "Ada Old", "ada@old.example", "ada@contoso.com", 1),
            ("u1", "Ada Berg", "ada@contoso.com", "ada@contoso.com", 2),
            ("u2", "Lin Chen", "", "lin@contoso.com", 1),
        ] {
            let user = DirectoryUser {
                id: id.into(),
                display_name: Some(name.into()),
                mail: Some(mail.into()).filter(|m: &String| !m.is_empty()),
                user_principal_name: Some(upn.into()),
            };
            keep_newest(&mut d.users, id, (Some(at), String::new()), user);
        }
        d
    }

    #[test]
    fn the_newest_snapshot_names_people() {
        let d = directory();
        let ada = d.person("u1", Some("whatever the message said"));
        assert_eq!(ada.display, "Ada Berg");
        assert_eq!(ada.email.as_deref(), Some("ada@contoso.com"));
        let lin = d.person("u2", None);
        assert_eq!(
            lin.email.as_deref(),
            Some("lin@contoso.com"),
            "UPN when no mail"
        );
        let stranger = d.person("u9", Some("Zoe"));
        assert_eq!((stranger.display.as_str(), stranger.email), ("Zoe", None));
        assert_eq!(d.person("u8", None).display, "u8");
    }

    #[test]
    fn custodians_resolve_by_id_upn_or_mail() {
        let d = directory();
        assert_eq!(d.resolve_custodian("u2").unwrap(), "u2");
        assert_eq!(d.resolve_custodian("LIN@contoso.com").unwrap(), "u2");
        assert_eq!(d.resolve_custodian("ada@contoso.com").unwrap(), "u1");
        assert_eq!(d.resolve_custodian("not-known-id").unwrap(), "not-known-id");
        let err = d.resolve_custodian("nobody@contoso.com").unwrap_err();
        assert!(
            err.contains("nobody@contoso.com") && err.contains("directory/users"),
            "{err}"
        );
    }

    #[test]
    fn chat_members_come_from_the_item() {
        let members = members_of(
            r#"{"id":"c","members":[{"userId":"u2","displayName":"Lin","email":"lin@contoso.com"},{"userId":"u1","displayName":"Ada","email":null},{"displayName":"no id"}]}"#,
        )
        .unwrap();
        let ids: Vec<&str> = members.iter().map(|m| m.user_id.as_str()).collect();
        assert_eq!(ids, vec!["u1", "u2"]);
        assert_eq!(members[1].email.as_deref(), Some("lin@contoso.com"));
        assert!(members_of("not json").is_err());
    }

    #[test]
    fn only_plausible_addresses_count_as_email() {
        assert!(looks_like_email("a.b@contoso.com"));
        assert!(looks_like_email("MKamiński@polar.com"));
        for bad in [
            "",
            "a",
            "a@",
            "@b",
            "a@b@c",
            "a b@c.com",
            "<a@b.com>",
            "a@.com",
        ] {
            assert!(!looks_like_email(bad), "{bad}");
        }
    }
}
