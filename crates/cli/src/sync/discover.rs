//! Discovery: the users, teams, channels and mail folders a run covers, turned into
//! scopes. The user list also feeds the directory snapshot.

use anyhow::Context;
use futures::{Stream, StreamExt, TryStreamExt};
use serde::Deserialize;

use super::plan::in_shard;
use crate::args::{Shard, SourceKind, SyncArgs};

/// One unit of work: a scope of Graph and its name in the state store.
#[derive(Debug, Clone)]
pub struct PlannedScope {
    pub scope: fetch::Scope,
    /// Stable key of the scope's checkpoint, e.g. `chats/<user id>`.
    pub key: String,
}

impl PlannedScope {
    pub fn chats(user_id: &str) -> Self {
        PlannedScope {
            scope: fetch::Scope::UserChats {
                user_id: user_id.to_string(),
            },
            key: format!("chats/{user_id}"),
        }
    }

    pub fn channel(team_id: &str, channel_id: &str) -> Self {
        PlannedScope {
            scope: fetch::Scope::Channel {
                team_id: team_id.to_string(),
                channel_id: channel_id.to_string(),
            },
            key: format!("channels/{team_id}/{channel_id}"),
        }
    }

    pub fn mail(user_id: &str, folder_id: &str) -> Self {
        PlannedScope {
            scope: fetch::Scope::MailFolder {
                user_id: user_id.to_string(),
                folder_id: folder_id.to_string(),
            },
            key: format!("mail/{user_id}/{folder_id}"),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdAndNames {
    id: String,
    #[serde(default)]
    user_principal_name: Option<String>,
}

/// What discovery found: the scopes to run, and the raw user pages for the directory.
pub struct Discovery {
    pub scopes: Vec<PlannedScope>,
    pub user_pages: Vec<fetch::Page>,
    pub users: usize,
    pub teams: usize,
}

pub async fn discover(client: &fetch::GraphClient, args: &SyncArgs) -> anyhow::Result<Discovery> {
    let sources = sources(args);
    let shard = args.shard;
    let mut scopes = Vec::new();

    let user_pages: Vec<fetch::Page> = client
        .users()
        .try_collect()
        .await
        .context("listing users")?;
    let mut users = Vec::new();
    for page in &user_pages {
        for (i, item) in page.iter().enumerate() {
            let user: IdAndNames = serde_json::from_str(item).with_context(|| {
                format!("users page {} item {i} has no string `id`", page.number)
            })?;
            if selected(&user, &args.users) && in_shard(&user.id, shard) {
                users.push(user.id);
            }
        }
    }
    check_all_found(&args.users, &user_pages, "user")?;

    if sources.contains(&SourceKind::Chats) {
        scopes.extend(users.iter().map(|u| PlannedScope::chats(u)));
    }
    if sources.contains(&SourceKind::Mail) {
        for user in &users {
            for folder in ids(
                client.mail_folders(user),
                &format!("mail folders of {user}"),
            )
            .await?
            {
                scopes.push(PlannedScope::mail(user, &folder));
            }
        }
    }
    let mut teams = Vec::new();
    if sources.contains(&SourceKind::Channels) {
        for team in ids(client.teams(), "teams").await? {
            let wanted = args.teams.is_empty() || args.teams.iter().any(|t| t == &team);
            if wanted && in_shard(&team, shard) {
                teams.push(team);
            }
        }
        for team in &teams {
            for channel in ids(client.channels(team), &format!("channels of team {team}")).await? {
                scopes.push(PlannedScope::channel(team, &channel));
            }
        }
    }
    Ok(Discovery {
        scopes,
        user_pages,
        users: users.len(),
        teams: teams.len(),
    })
}

/// The sources a run covers: as given, else chats and channels.
pub fn sources(args: &SyncArgs) -> Vec<SourceKind> {
    let mut sources = if args.sources.is_empty() {
        vec![SourceKind::Chats, SourceKind::Channels]
    } else {
        args.sources.clone()
    };
    sources.sort();
    sources.dedup();
    sources
}

/// The shard a run is, for naming its own state location.
pub fn shard_suffix(shard: Option<Shard>) -> Option<String> {
    shard.map(|s| format!("shard-{}-of-{}", s.index, s.count))
}

fn selected(user: &IdAndNames, wanted: &[String]) -> bool {
    wanted.is_empty()
        || wanted.iter().any(|w| {
            w.eq_ignore_ascii_case(&user.id)
                || user
                    .user_principal_name
                    .as_deref()
                    .is_some_and(|upn| w.eq_ignore_ascii_case(upn))
        })
}

/// A user asked for by --user that the tenant does not have is a usage mistake worth
/// stopping for, not a silent nothing.
fn check_all_found(wanted: &[String], pages: &[fetch::Page], what: &str) -> anyhow::Result<()> {
    for w in wanted {
        let found = pages.iter().flat_map(|p| p.iter()).any(|item| {
            serde_json::from_str::<IdAndNames>(item)
                .map(|u| selected(&u, std::slice::from_ref(w)))
                .unwrap_or(false)
        });
        if !found {
            anyhow::bail!("--{what} {w}: no such {what} in the tenant");
        }
    }
    Ok(())
}

async fn ids(
    pages: impl Stream<Item = Result<fetch::Page, fetch::FetchError>>,
    what: &str,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut pages = std::pin::pin!(pages);
    while let Some(page) = pages.next().await {
        let page = page.with_context(|| format!("listing {what}"))?;
        for (i, item) in page.iter().enumerate() {
            let entry: IdAndNames = serde_json::from_str(item).with_context(|| {
                format!("{what}: page {} item {i} has no string `id`", page.number)
            })?;
            ids.push(entry.id);
        }
    }
    Ok(ids)
}
