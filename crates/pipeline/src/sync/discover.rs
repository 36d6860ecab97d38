//! Discovery: the users, teams, channels and mail folders a run covers, turned into
//! scopes. The user list also feeds the directory snapshot.

use anyhow::Context;
use archive::layout::Shard;
use archive::records::{ScopeOutcome, ScopeReport, SkipReason};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt, TryStreamExt};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::checkpoint::{Phase, RESYNC_OVERLAP};
use super::{SourceKind, SyncOptions};

/// One unit of work: a scope of Graph, its name in the state location, and where it
/// starts when it has no checkpoint yet.
#[derive(Debug, Clone)]
pub struct PlannedScope {
    pub scope: fetch::Scope,
    /// Stable key of the scope's checkpoint, e.g. `chats/<user id>`.
    pub key: String,
    pub first: Phase,
}

impl PlannedScope {
    /// A user's chats: a window over all history (or from `--since`) up to the run's start
    /// by getAllMessages, since delta serves only the last eight months; delta rounds
    /// after it.
    pub fn chats(user_id: &str, since: Option<DateTime<Utc>>, run_started: DateTime<Utc>) -> Self {
        PlannedScope {
            scope: fetch::Scope::UserChats {
                user_id: user_id.to_string(),
            },
            key: format!("chats/{user_id}"),
            first: Phase::Window {
                from: since,
                to: run_started,
                next_link: None,
            },
        }
    }

    /// A channel's delta rounds. Its history before `since` comes from its team's
    /// history scope.
    pub fn channel(team_id: &str, channel_id: &str, since: Option<DateTime<Utc>>) -> Self {
        PlannedScope {
            scope: fetch::Scope::Channel {
                team_id: team_id.to_string(),
                channel_id: channel_id.to_string(),
            },
            key: format!("channels/{team_id}/{channel_id}"),
            first: Phase::DeltaStart { since },
        }
    }

    /// A team's channel history up to the run's start: one window over every channel,
    /// roots and replies (getAllMessages), read once.
    pub fn team_history(
        team_id: &str,
        since: Option<DateTime<Utc>>,
        run_started: DateTime<Utc>,
    ) -> Self {
        PlannedScope {
            scope: fetch::Scope::Team {
                team_id: team_id.to_string(),
            },
            key: format!("teams/{team_id}/history"),
            first: Phase::Window {
                from: since,
                to: run_started,
                next_link: None,
            },
        }
    }

    /// A mail folder's delta rounds (from `since`, by received time, on a first run).
    pub fn mail(user_id: &str, folder_id: &str, since: Option<DateTime<Utc>>) -> Self {
        PlannedScope {
            scope: fetch::Scope::MailFolder {
                user_id: user_id.to_string(),
                folder_id: folder_id.to_string(),
            },
            key: format!("mail/{user_id}/{folder_id}"),
            first: Phase::DeltaStart { since },
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

/// What discovery found: the scopes to run, what it could not list (each a scope report,
/// skipped or failed), and the raw user pages for the directory.
pub struct Discovery {
    pub scopes: Vec<PlannedScope>,
    pub reports: Vec<ScopeReport>,
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

/// Lists what the run covers. Only a failure to log in is fatal: a user, team or folder
/// that cannot be listed is reported (skipped when Graph says it is simply not there,
/// failed otherwise) and the rest goes on.
pub async fn discover(
    client: &fetch::GraphClient,
    options: &SyncOptions,
    checkpoints: &sink::CheckpointStore,
    run_started: DateTime<Utc>,
) -> anyhow::Result<Discovery> {
    let sources = options.sources();
    let shard = options.shard;
    let since = options.since;
    let mut found = Discovery {
        scopes: Vec::new(),
        reports: Vec::new(),
        user_pages: Vec::new(),
        users: 0,
        teams: 0,
    };

    // Users are listed whatever the sources: the directory snapshot names senders.
    let mut users = Vec::new();
    {
        match client.users().try_collect::<Vec<_>>().await {
            Ok(pages) => found.user_pages = pages,
            Err(e) => found.fail("users", "users of the tenant", e)?,
        }
        for page in &found.user_pages {
            for (i, item) in page.iter().enumerate() {
                let user: IdAndNames = serde_json::from_str(item).with_context(|| {
                    format!("users page {} item {i} has no string `id`", page.number)
                })?;
                if selected(&user, &options.users) && in_shard(&user.id, shard) {
                    users.push(user.id);
                }
            }
        }
        check_all_found(&options.users, &found.user_pages, "user")?;
    }
    found.users = users.len();

    if sources.contains(&SourceKind::Chats) {
        found.scopes.extend(
            users
                .iter()
                .map(|u| PlannedScope::chats(u, since, run_started)),
        );
    }
    // Listings of users' folders and teams' channels run side by side, as many as scopes
    // do: a tenant of thousands of users would otherwise spend its first minutes here.
    let listing_concurrency = options.concurrency.max(1);
    if sources.contains(&SourceKind::Mail) {
        let listed: Vec<_> = futures::stream::iter(&users)
            .map(|user| async move { (user, ids(client.mail_folders(user)).await) })
            .buffered(listing_concurrency)
            .collect()
            .await;
        for (user, folders) in listed {
            let key = format!("mail/{user}");
            match folders {
                Ok(folders) => {
                    for folder in folders
                        .iter()
                        .map(String::as_str)
                        .chain([fetch::RECOVERABLE_ITEMS_DELETIONS])
                    {
                        found.scopes.push(PlannedScope::mail(user, folder, since));
                    }
                }
                Err(e) => found.fail(&key, &format!("mail folders of user {user}"), e)?,
            }
        }
    }
    if sources.contains(&SourceKind::Channels) {
        let mut teams = Vec::new();
        match ids(client.teams()).await {
            Ok(all) => {
                for team in all {
                    let wanted =
                        options.teams.is_empty() || options.teams.iter().any(|t| t == &team);
                    if wanted && in_shard(&team, shard) {
                        teams.push(team);
                    }
                }
            }
            Err(e) => found.fail("teams", "teams of the tenant", e)?,
        }
        found.teams = teams.len();
        let listed: Vec<_> = futures::stream::iter(&teams)
            .map(|team| async move { (team, ids(client.channels(team)).await) })
            .buffered(listing_concurrency)
            .collect()
            .await;
        for (team, channels) in listed {
            let history = PlannedScope::team_history(team, since, run_started);
            // A team seen for the first time: its history covers every channel up to
            // this run, so its channels' delta rounds need only what changes from now
            // on. A channel new to a known team was made since the team's history: its
            // first delta round reads all delta offers.
            let new_team = checkpoints
                .load(&history.key)
                .await
                .with_context(|| format!("loading the checkpoint of {}", history.key))?
                .is_none();
            let channel_since = if new_team {
                Some(run_started - RESYNC_OVERLAP)
            } else {
                since
            };
            match channels {
                Ok(channels) => {
                    found.scopes.push(history);
                    for channel in channels {
                        found
                            .scopes
                            .push(PlannedScope::channel(team, &channel, channel_since));
                    }
                }
                Err(e) => found.fail(
                    &format!("channels/{team}"),
                    &format!("channels of team {team}"),
                    e,
                )?,
            }
        }
    }
    Ok(found)
}

impl Discovery {
    /// Records a listing that failed: skipped when Graph says the thing is not there to
    /// read, failed otherwise; a refused login stops the run.
    fn fail(&mut self, key: &str, what: &str, error: fetch::FetchError) -> anyhow::Result<()> {
        if matches!(error, fetch::FetchError::Auth { .. }) {
            return Err(anyhow::Error::new(error).context(format!("listing {what}")));
        }
        let outcome = match error.unavailable() {
            Some(reason) => {
                tracing::info!(
                    scope = key,
                    reason = reason.as_str(),
                    "skipped: {}",
                    reason.describe()
                );
                ScopeOutcome::Skipped {
                    reason: skip_reason(reason),
                }
            }
            None => {
                tracing::error!(scope = key, "listing {what} failed: {error}");
                ScopeOutcome::Failed {
                    error: format!("listing {what}: {error}"),
                }
            }
        };
        self.reports
            .push(ScopeReport::new(what.to_string(), key.to_string(), outcome));
        Ok(())
    }
}

/// The run summary's name for why Graph had nothing to give.
pub fn skip_reason(reason: fetch::Unavailable) -> SkipReason {
    match reason {
        fetch::Unavailable::NoMailbox => SkipReason::NoMailbox,
        fetch::Unavailable::UserNotFound => SkipReason::UserDeleted,
        fetch::Unavailable::TeamNotFound => SkipReason::TeamDeleted,
        fetch::Unavailable::ChannelNotFound | fetch::Unavailable::MessageNotFound => {
            SkipReason::ChannelDeleted
        }
        fetch::Unavailable::MailFolderNotFound => SkipReason::FolderDeleted,
        fetch::Unavailable::CrossTenantChannel => SkipReason::SharedFromOtherTenant,
        fetch::Unavailable::NotLicensed => SkipReason::NoTeamsLicence,
    }
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

/// The ids of every item of a listing.
async fn ids(
    pages: impl Stream<Item = Result<fetch::Page, fetch::FetchError>>,
) -> Result<Vec<String>, fetch::FetchError> {
    let mut ids = Vec::new();
    let mut pages = std::pin::pin!(pages);
    while let Some(page) = pages.next().await {
        let page = page?;
        for (i, item) in page.iter().enumerate() {
            match serde_json::from_str::<IdAndNames>(item) {
                Ok(entry) => ids.push(entry.id),
                Err(e) => {
                    return Err(fetch::FetchError::MalformedPage {
                        scope: "discovery".into(),
                        url: page.url.clone(),
                        page: page.number,
                        attempts: 1,
                        detail: format!("item {i} has no string `id`: {e}"),
                    });
                }
            }
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
