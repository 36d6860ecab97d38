//! Discovery: the users, teams, channels and mail folders a run covers, turned into
//! scopes. The user list also feeds the directory snapshot.

use anyhow::Context;
use archive::layout::Shard;
use futures::{Stream, StreamExt, TryStreamExt};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{SourceKind, SyncOptions};

/// One unit of work: a scope of Graph and its name in the state location.
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

/// Whether an owner (a user or team id) falls to this shard. The hash is stable across
/// machines, versions and runs, so a scope always belongs to the same worker.
pub fn in_shard(owner_id: &str, shard: Option<Shard>) -> bool {
    match shard {
        None => true,
        Some(shard) => shard_of(owner_id, shard.count) == shard.index,
    }
}

/// The shard (1..=count) an owner id falls to.
pub fn shard_of(owner_id: &str, count: u32) -> u32 {
    let digest = Sha256::digest(owner_id.to_ascii_lowercase().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(count)) as u32 + 1
}

pub async fn discover(
    client: &fetch::GraphClient,
    options: &SyncOptions,
) -> anyhow::Result<Discovery> {
    let sources = options.sources();
    let shard = options.shard;
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
            if selected(&user, &options.users) && in_shard(&user.id, shard) {
                users.push(user.id);
            }
        }
    }
    check_all_found(&options.users, &user_pages, "user")?;

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
            let wanted = options.teams.is_empty() || options.teams.iter().any(|t| t == &team);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_owner_falls_to_exactly_one_shard() {
        let count = 5;
        let ids: Vec<String> = (0..1000).map(|i| format!("user-{i}")).collect();
        let mut sizes = vec![0usize; count as usize];
        for id in &ids {
            let owners: Vec<u32> = (1..=count)
                .filter(|&k| in_shard(id, Some(Shard { index: k, count })))
                .collect();
            assert_eq!(owners.len(), 1, "{id} in {owners:?}");
            sizes[(owners[0] - 1) as usize] += 1;
        }
        // Roughly even: no shard gets less than half its share.
        assert!(sizes.iter().all(|&n| n > 100), "{sizes:?}");
    }

    #[test]
    fn the_hash_is_stable() {
        // Fixed values: changing the hash would move scopes between workers.
        assert_eq!(shard_of("alice", 8), shard_of("ALICE", 8));
        assert_eq!(shard_of("0b4f1cf6-54c8-4820-bbb7-2a1f4257ade5", 4), 1);
    }
}
