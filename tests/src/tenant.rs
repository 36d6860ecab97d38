//! A simulated tenant for a test, and the archiver pointed at it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use graph_sim::{RunningSim, SimConfig};

/// The simulator, served from its own runtime while the test drives processes.
pub struct Tenant {
    pub sim: RunningSim,
    runtime: tokio::runtime::Runtime,
}

impl Tenant {
    pub fn start(config: SimConfig) -> Tenant {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let sim = runtime
            .block_on(graph_sim::start(config))
            .expect("the simulator starts");
        Tenant { sim, runtime }
    }

    /// `archiver sync` of chats, channels and mail against this tenant, writing to `out`.
    pub fn sync_every_source(&self, archiver: &str, out: &str) -> Command {
        let mut command = self.sync(archiver, out);
        command.args([
            "--source", "chats", "--source", "channels", "--source", "mail",
        ]);
        command
    }

    /// `archiver sync` against this tenant, writing to `out`, secret in the environment.
    pub fn sync(&self, archiver: &str, out: &str) -> Command {
        let mut command = Command::new(archiver);
        command
            .args(["--no-progress", "sync"])
            .args(["--tenant-id", self.sim.tenant_id()])
            .args(["--client-id", self.sim.client_id()])
            .args(["--graph-url", self.sim.graph_url().as_str()])
            .args(["--login-url", self.sim.login_url().as_str()])
            .arg("--allow-insecure-http")
            .args(["--out", out])
            .env("TEAMS_ARCHIVER_CLIENT_SECRET", self.sim.client_secret())
            .env("RUST_LOG", "info");
        command
    }

    /// Runs an async admin call on the tenant's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

/// The content hash the archive uses, of a JSON text.
pub fn content_hash(json: &str) -> String {
    hex(&transform::canonical_sha256(json).expect("valid JSON"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the archive holds, by content hash: how many rows each version has.
pub fn version_counts(archive: &Path, table: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for row in crate::parquet_files::rows(archive, table, &["content_sha256"]) {
        let hash = row["content_sha256"]
            .clone()
            .expect("content_sha256 is never null");
        *counts.entry(hash).or_insert(0) += 1;
    }
    counts
}

/// Custodian rows as (custodian, content hash) with their counts.
pub fn custodian_counts(archive: &Path) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for row in crate::parquet_files::rows(
        archive,
        "chat_message_custodians",
        &["custodian_user_id", "content_sha256"],
    ) {
        let key = (
            row["custodian_user_id"].clone().expect("a custodian"),
            row["content_sha256"].clone().expect("a hash"),
        );
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// The versions of chat and channel messages the archive must hold after runs that
/// saw these snapshots, with the custodians of each.
pub fn expected_messages(
    snapshots: &[&graph_sim::Snapshot],
) -> (
    std::collections::BTreeSet<String>,
    std::collections::BTreeSet<(String, String)>,
) {
    let mut versions = std::collections::BTreeSet::new();
    let mut custodians = std::collections::BTreeSet::new();
    for snapshot in snapshots {
        for message in &snapshot.messages {
            let hash = content_hash(&message.json);
            for custodian in &message.custodians {
                custodians.insert((custodian.clone(), hash.clone()));
            }
            versions.insert(hash);
        }
    }
    (versions, custodians)
}

/// Mail versions (content hashes) the archive must hold after runs that saw these
/// snapshots.
pub fn expected_mail(snapshots: &[&graph_sim::Snapshot]) -> std::collections::BTreeSet<String> {
    snapshots
        .iter()
        .flat_map(|s| s.mail.iter().map(|m| content_hash(&m.json)))
        .collect()
}

/// A chat of the tenant and a member of it, from the first chat message.
pub fn a_chat_and_its_member(snapshot: &graph_sim::Snapshot) -> (String, String) {
    snapshot
        .messages
        .iter()
        .find_map(|m| match &m.conversation {
            graph_sim::Conversation::Chat { chat_id } => {
                Some((chat_id.clone(), m.custodians[0].clone()))
            }
            _ => None,
        })
        .expect("the tenant has a chat message")
}

pub fn small_tenant() -> SimConfig {
    SimConfig::small()
}
