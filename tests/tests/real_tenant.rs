//! `teams-archiver sync` against a tenant shaped like real ones, served as Microsoft
//! documents Graph: users without a mailbox or without the licence model A needs, a team
//! deleted while the run reads it, a channel shared from another tenant, system events
//! behind evolvable enums, channel history older than delta's eight months, mail folders
//! at any depth and in Recoverable Items, state tokens that expire, and Graph's
//! throttling (per team whatever URL names it, or a lower limit than published).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use archive::records::{ScopeOutcome, SkipReason};
use e2e::output_text;
use e2e::tenant::{Tenant, content_hash, custodian_counts, version_counts};
use graph_sim::{
    Conversation, Directory, EndpointKind, RateLimits, SimConfig, Snapshot, SustainedLimit,
};

const ARCHIVER: &str = env!("CARGO_BIN_EXE_archiver");
const ALL_SOURCES: [&str; 6] = [
    "--source", "chats", "--source", "channels", "--source", "mail",
];

/// A sync of every source started in the background, its output piped for the test to read.
fn spawn_sync(tenant: &Tenant, out: &Path) -> Child {
    tenant
        .sync(ARCHIVER, out.to_str().unwrap())
        .args(ALL_SOURCES)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the archiver starts")
}

fn sync(tenant: &Tenant, out: &Path, extra: &[&str]) -> Output {
    tenant
        .sync(ARCHIVER, out.to_str().expect("UTF-8 path"))
        .args(ALL_SOURCES)
        .args(extra)
        .output()
        .expect("the archiver starts")
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", output_text(output));
}

/// What the archive must hold of these snapshots: Graph returns no chat message to a user
/// without the licence model A needs, so such a user is nobody's custodian here.
struct Expected {
    versions: BTreeSet<String>,
    custodians: BTreeSet<(String, String)>,
    mail: BTreeSet<String>,
}

fn expected(snapshots: &[&Snapshot], directory: &Directory) -> Expected {
    let unlicensed: BTreeSet<&str> = directory
        .users
        .iter()
        .filter(|u| !u.licensed)
        .map(|u| u.id.as_str())
        .collect();
    let mut want = Expected {
        versions: BTreeSet::new(),
        custodians: BTreeSet::new(),
        mail: BTreeSet::new(),
    };
    for snapshot in snapshots {
        for message in &snapshot.messages {
            let hash = content_hash(&message.json);
            let readable: Vec<&String> = message
                .custodians
                .iter()
                .filter(|c| !unlicensed.contains(c.as_str()))
                .collect();
            let is_channel = matches!(message.conversation, Conversation::Channel { .. });
            if is_channel || !readable.is_empty() {
                want.versions.insert(hash.clone());
            }
            for custodian in readable {
                want.custodians.insert((custodian.clone(), hash.clone()));
            }
        }
        want.mail
            .extend(snapshot.mail.iter().map(|m| content_hash(&m.json)));
    }
    want
}

/// Every expected version exactly once and nothing else (mail: plus its removals).
fn assert_archive_holds(out: &Path, want: &Expected) {
    let messages = version_counts(out, "chat_messages");
    let repeated: Vec<_> = messages.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "versions stored twice: {repeated:?}");
    let archived: BTreeSet<String> = messages.into_keys().collect();
    assert_eq!(
        want.versions.difference(&archived).count(),
        0,
        "versions missing from the archive"
    );
    assert_eq!(
        archived.difference(&want.versions).count(),
        0,
        "rows the tenant never had"
    );
    let custodians = custodian_counts(out);
    assert!(
        custodians.values().all(|n| *n == 1),
        "a custodian row twice"
    );
    assert_eq!(
        custodians.into_keys().collect::<BTreeSet<_>>(),
        want.custodians,
        "custodian rows"
    );
    let mail = version_counts(out, "mail_messages");
    assert!(mail.values().all(|n| *n == 1), "a mail version twice");
    let archived_mail: BTreeSet<String> = mail.into_keys().collect();
    let missing: Vec<_> = want.mail.difference(&archived_mail).collect();
    assert!(missing.is_empty(), "mail versions missing: {missing:?}");
}

fn last_summary(out: &Path) -> archive::records::RunSummary {
    e2e::run_summaries(out)
        .pop()
        .expect("the run left a summary")
}

fn skipped(summary: &archive::records::RunSummary) -> BTreeMap<String, SkipReason> {
    summary
        .skipped()
        .map(|(scope, reason)| (scope.key.clone(), reason))
        .collect()
}

fn failed(summary: &archive::records::RunSummary) -> Vec<String> {
    summary
        .scopes
        .iter()
        .filter(|s| matches!(s.outcome, ScopeOutcome::Failed { .. }))
        .map(|s| format!("{}: {:?}", s.key, s.outcome))
        .collect()
}

/// A first night: what cannot be read for a reason that is not a fault is skipped and
/// named; everything else is archived exactly once, system events as such, channel
/// history from before delta's eight months, mail at every depth; the exit code is 0.
#[test]
fn a_first_night_skips_what_cannot_be_read_and_archives_the_rest_once() {
    let tenant = Tenant::start(SimConfig {
        // Slow enough that the team can be deleted between listing teams and reading it.
        latency: Duration::from_millis(200),
        ..SimConfig::real_tenant()
    });
    let sim = &tenant.sim;
    let directory = sim.directory();
    let doomed = directory
        .teams
        .iter()
        .find(|t| t.channels.iter().all(|c| c.owner_tenant_id.is_none()))
        .expect("a team of this tenant only")
        .clone();
    let shared_channel = directory
        .teams
        .iter()
        .flat_map(|t| t.channels.iter().map(move |c| (t, c)))
        .find(|(_, c)| c.owner_tenant_id.is_some())
        .map(|(t, c)| (t.id.clone(), c.id.clone()))
        .expect("a channel shared from another tenant");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("archive");
    let child = spawn_sync(&tenant, &out);
    // The team goes once the run has listed it: its channels or messages answer 404.
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.stats().total(EndpointKind::Teams) == 0 {
        assert!(Instant::now() < deadline, "the run never listed teams");
        std::thread::sleep(Duration::from_millis(5));
    }
    sim.delete_team(&doomed.id).expect("the team exists");
    sim.set_latency(Duration::ZERO);
    let output = child.wait_with_output().expect("the run ends");
    assert_exit(&output, 0);
    let all = output_text(&output);

    let summary = last_summary(&out);
    assert!(failed(&summary).is_empty(), "{:?}", failed(&summary));
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    let skips = skipped(&summary);
    for user in directory.users.iter().filter(|u| !u.has_mailbox) {
        assert_eq!(
            skips.get(&format!("mail/{}", user.id)),
            Some(&SkipReason::NoMailbox),
            "{skips:?}"
        );
    }
    for user in directory.users.iter().filter(|u| !u.licensed) {
        assert_eq!(
            skips.get(&format!("chats/{}", user.id)),
            Some(&SkipReason::NoTeamsLicence),
            "{skips:?}"
        );
    }
    assert_eq!(
        skips.get(&format!(
            "channels/{}/{}",
            shared_channel.0, shared_channel.1
        )),
        Some(&SkipReason::SharedFromOtherTenant),
        "{skips:?}"
    );
    let team_skips: Vec<_> = skips
        .iter()
        .filter(|(key, _)| key.contains(&doomed.id))
        .collect();
    assert!(
        !team_skips.is_empty(),
        "the deleted team is named: {skips:?}"
    );
    assert!(
        team_skips
            .iter()
            .all(|(_, r)| matches!(r, SkipReason::TeamDeleted | SkipReason::ChannelDeleted)),
        "{team_skips:?}"
    );
    for key in skips.keys() {
        let lines = all
            .lines()
            .filter(|l| l.contains(key.as_str()) && l.contains("skipped"))
            .count();
        assert_eq!(lines, 1, "{key} is logged once as skipped:\n{all}");
    }

    let snapshot = sim.snapshot();
    let want = expected(&[&snapshot], &directory);
    assert_archive_holds(&out, &want);

    // System events, which Graph hides behind evolvable enums, arrive as such.
    let types: Vec<Option<String>> =
        e2e::parquet_files::rows(&out, "chat_messages", &["message_type"])
            .into_iter()
            .map(|r| r["message_type"].clone())
            .collect();
    let events = types
        .iter()
        .filter(|t| t.as_deref() == Some("systemEventMessage"))
        .count();
    let truth_events = snapshot
        .messages
        .iter()
        .filter(|m| m.json.contains("\"messageType\":\"systemEventMessage\""))
        .filter(|m| want.versions.contains(&content_hash(&m.json)))
        .count();
    assert!(truth_events > 0, "the tenant has system events");
    assert_eq!(
        events, truth_events,
        "every system event as systemEventMessage"
    );
    assert!(
        !types
            .iter()
            .any(|t| t.as_deref() == Some("unknownFutureValue")),
        "no message arrived as unknownFutureValue"
    );

    // Channel history from before delta's eight months is there.
    let eight_months_ago = sim.now() - chrono::Duration::days(8 * 31);
    let old_channel: Vec<_> = snapshot
        .messages
        .iter()
        .filter(|m| {
            matches!(m.conversation, Conversation::Channel { .. })
                && m.last_modified < eight_months_ago
        })
        .collect();
    assert!(
        !old_channel.is_empty(),
        "the tenant has old channel history"
    );
    assert!(old_channel.iter().any(|m| m.reply_to_id.is_some()));

    // Mail in nested folders and in Recoverable Items is there (assert_archive_holds
    // checked every item; these say the tenant has some).
    let folders: BTreeMap<&str, &graph_sim::DirectoryFolder> = directory
        .mail_folders
        .iter()
        .map(|f| (f.id.as_str(), f))
        .collect();
    let depth = |id: &str| {
        let mut depth = 0;
        let mut at = folders.get(id).and_then(|f| f.parent_id.as_deref());
        while let Some(parent) = at {
            depth += 1;
            at = folders.get(parent).and_then(|f| f.parent_id.as_deref());
        }
        depth
    };
    assert!(snapshot.mail.iter().any(|m| depth(&m.folder_id) >= 3));
    assert!(snapshot.mail.iter().any(|m| {
        folders
            .get(m.folder_id.as_str())
            .and_then(|f| f.well_known_name.as_deref())
            == Some("recoverableitemsdeletions")
    }));
    assert!(
        snapshot
            .mail
            .iter()
            .any(|m| folders.get(m.folder_id.as_str()).is_some_and(|f| f.hidden))
    );
}

/// Later nights: a folder made since is found, a deleted one is reported and its
/// checkpoint kept, and an old message changed while the state tokens expired is
/// archived after the resync.
#[test]
fn later_nights_find_new_folders_and_miss_no_change_across_an_expired_token() {
    let tenant = Tenant::start(SimConfig::real_tenant());
    let sim = &tenant.sim;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("archive");
    assert_exit(&sync(&tenant, &out, &[]), 0);
    let first = sim.snapshot();
    let directory = sim.directory();

    let user = directory
        .users
        .iter()
        .find(|u| u.has_mailbox)
        .expect("a user with a mailbox")
        .id
        .clone();
    let deepest = directory
        .mail_folders
        .iter()
        .rfind(|f| f.user_id == user && f.parent_id.is_some())
        .expect("nested folders")
        .id
        .clone();
    let made = sim
        .add_mail_folder(&user, Some(&deepest), "Made later", false)
        .expect("a new folder");
    sim.add_mail(&user, &made.id, "In the new folder", "<p>found</p>")
        .expect("mail in the new folder");
    let doomed = directory
        .mail_folders
        .iter()
        .find(|f| f.user_id == user && f.hidden && f.well_known_name.is_none())
        .expect("a hidden folder of the user's own")
        .id
        .clone();
    sim.delete_mail_folder(&user, &doomed)
        .expect("the folder goes");

    // The oldest message of the mailbox changes while Graph forgets every state token.
    sim.expire_state_tokens();
    let oldest = first
        .mail
        .iter()
        .filter(|m| m.user_id == user && m.folder_id != doomed)
        .min_by_key(|m| m.received)
        .expect("mail")
        .clone();
    sim.update_mail(&oldest.user_id, &oldest.folder_id, &oldest.id)
        .expect("the update");
    sim.advance_clock(Duration::from_secs(3600));

    let second_run = sync(&tenant, &out, &[]);
    assert_exit(&second_run, 0);
    let second = sim.snapshot();
    let changed = second
        .mail
        .iter()
        .find(|m| m.id == oldest.id)
        .expect("still there");
    assert_ne!(changed.json, oldest.json);
    let archived_mail = version_counts(&out, "mail_messages");
    assert_eq!(
        archived_mail.get(&content_hash(&changed.json)),
        Some(&1),
        "the old message's change is archived once"
    );
    let new_mail = second
        .mail
        .iter()
        .find(|m| m.folder_id == made.id)
        .expect("the new folder's mail");
    assert_eq!(archived_mail.get(&content_hash(&new_mail.json)), Some(&1));
    let summary = last_summary(&out);
    assert!(failed(&summary).is_empty(), "{:?}", failed(&summary));
    assert!(
        summary.scopes.iter().any(|s| s.resyncs > 0),
        "the expired tokens were resynced"
    );

    let want = expected(&[&first, &second], &directory);
    assert_archive_holds(&out, &want);

    // status names the deleted folder, whose checkpoint stays.
    let status = std::process::Command::new(ARCHIVER)
        .args(["status", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_exit(&status, 0);
    let status_text = output_text(&status);
    let line = status_text
        .lines()
        .find(|l| l.contains(&format!("mail/{user}/{doomed}")))
        .unwrap_or_else(|| panic!("status names the deleted folder:\n{status_text}"));
    assert!(line.contains("not in the latest discovery"), "{line}");
}

fn throttled_share(tenant: &Tenant) -> (u64, u64, f64) {
    let stats = tenant.sim.stats();
    let throttled = stats.with_status(429);
    let all: u64 = stats.requests.iter().map(|r| r.count).sum();
    (throttled, all, throttled as f64 / all.max(1) as f64)
}

/// getAllMessages hands back nextLinks in key syntax (`teams('{id}')/...`); the pacer
/// counts them against the team as Graph does, so the team's 4 requests/s is rarely
/// crossed.
#[test]
fn key_syntax_links_are_paced_per_team() {
    let tenant = Tenant::start(SimConfig {
        teams: 2,
        channels_per_team: 3,
        messages_per_channel: 40,
        max_replies_per_message: 2,
        users: 4,
        messages_per_user: 4,
        page_size_cap: Some(8),
        rate_limit: Some(RateLimits::default()),
        key_syntax_links: true,
        ..SimConfig::small()
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("archive");
    let output = tenant
        .sync(ARCHIVER, out.to_str().unwrap())
        .args(["--source", "channels"])
        .output()
        .unwrap();
    assert_exit(&output, 0);
    let stats = tenant.sim.stats();
    let windows = stats.total(EndpointKind::TeamMessagesWindow);
    assert!(
        windows >= 20,
        "the team history takes many pages: {windows}"
    );
    let (throttled, all, share) = throttled_share(&tenant);
    println!(
        "per team: {throttled} 429s of {all} requests ({:.1}%)",
        share * 100.0
    );
    assert!(share <= 0.05, "{throttled} 429s of {all} requests");
    for team in &tenant.sim.directory().teams {
        let bucket = stats
            .bucket(&format!("team:{}", team.id))
            .expect("the team's bucket");
        assert!(bucket.admitted > 0, "{bucket:?}");
    }
}

/// A server whose limit is lower than the published ones: the client converges to it, so
/// a first run takes at most 1.5 times the ideal (requests / limit) and provokes few 429s.
#[test]
fn a_lower_server_limit_is_found_and_kept() {
    first_run_keeps_to(
        RateLimits {
            app_requests_per_second: Some(40),
            retry_after_seconds: Some(1),
            ..RateLimits::unlimited()
        },
        40.0,
    );
}

/// Graph's Teams limits also hold over a longer window at about 83% of the per-second
/// rate: the client finds that too.
#[test]
fn a_sustained_window_below_the_per_second_limit_is_found_and_kept() {
    first_run_keeps_to(
        RateLimits {
            app_requests_per_second: Some(48),
            retry_after_seconds: Some(1),
            sustained: Some(SustainedLimit {
                window_seconds: 10,
                per_mille: 833,
            }),
            ..RateLimits::unlimited()
        },
        48.0 * 0.833,
    );
}

/// A first run against `limits`, which allow `rate` requests/s in the long run: at most
/// 1.5 times the ideal (requests / rate) and at most 5% 429s.
fn first_run_keeps_to(limits: RateLimits, rate: f64) {
    let tenant = Tenant::start(SimConfig {
        users: 24,
        messages_per_user: 30,
        teams: 2,
        channels_per_team: 2,
        messages_per_channel: 30,
        mail_per_user: 20,
        // Small pages: many requests for little data, so the run is about pacing.
        page_size_cap: Some(5),
        rate_limit: Some(limits),
        ..SimConfig::small()
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("archive");
    let started = Instant::now();
    let child = spawn_sync(&tenant, &out);
    let mut timeline = Vec::new();
    let mut last = 0;
    while timeline.len() < 200 {
        std::thread::sleep(Duration::from_millis(1000));
        let now = tenant.sim.stats().admitted;
        timeline.push(now - last);
        last = now;
        if now > 0 && timeline.last() == Some(&0) {
            break;
        }
    }
    println!("admitted per second: {timeline:?}");
    let output = child.wait_with_output().unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert_exit(&output, 0);
    let stats = tenant.sim.stats();
    let ideal = stats.admitted as f64 / rate;
    let (throttled, all, share) = throttled_share(&tenant);
    let span = stats.admitted_span.as_secs_f64();
    println!(
        "{rate:.0} requests/s allowed: {} requests admitted, ideal {ideal:.1} s, took {elapsed:.1} s ({:.2}x), requests spanned {span:.1} s ({:.2}x), {throttled} 429s of {all} ({:.1}%)",
        stats.admitted,
        elapsed / ideal,
        span / ideal,
        share * 100.0
    );
    assert!(ideal >= 8.0, "enough requests to measure: {ideal:.1} s");
    let adaptations: Vec<&str> = std::str::from_utf8(&output.stderr)
        .unwrap_or("")
        .lines()
        .filter(|l| l.contains("throttled the app") || l.contains("finished"))
        .collect();
    assert!(
        elapsed <= 1.5 * ideal,
        "took {elapsed:.1} s against an ideal of {ideal:.1} s:\n{}",
        adaptations.join("\n")
    );
    assert!(share <= 0.05, "{throttled} 429s of {all} requests");
}

/// `--shard K/N --state DIR`: the state folder is a root each shard keeps its own part of.
#[test]
fn two_shards_share_one_state_root() {
    let tenant = Tenant::start(SimConfig::real_tenant());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("archive");
    let state = dir.path().join("state");
    let shards: Vec<_> = (1..=2)
        .map(|k| {
            tenant
                .sync(ARCHIVER, out.to_str().unwrap())
                .args(ALL_SOURCES)
                .args(["--shard", &format!("{k}/2")])
                .args(["--state", state.to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for shard in shards {
        assert_exit(&shard.wait_with_output().unwrap(), 0);
    }
    let mut keys = BTreeSet::new();
    for k in 1..=2 {
        let checkpoints = state.join(format!("shard-{k}-of-2/checkpoints"));
        let entries: Vec<_> = std::fs::read_dir(&checkpoints)
            .unwrap_or_else(|e| panic!("{}: {e}", checkpoints.display()))
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(!entries.is_empty(), "shard {k} kept checkpoints");
        for name in entries {
            assert!(keys.insert(name.clone()), "{name} is in both shards");
        }
    }
    let snapshot = tenant.sim.snapshot();
    let directory = tenant.sim.directory();
    let want = expected(&[&snapshot], &directory);
    let archived: BTreeSet<String> = version_counts(&out, "chat_messages").into_keys().collect();
    assert_eq!(archived, want.versions);
    let custodians = custodian_counts(&out);
    assert!(custodians.values().all(|n| *n == 1));
    assert_eq!(
        custodians.into_keys().collect::<BTreeSet<_>>(),
        want.custodians
    );
}

/// A scope that failed catches up on the next run, and the night after is quiet: no
/// new file and one request per delta scope.
#[test]
fn after_a_failed_scope_recovers_the_next_run_is_quiet() {
    let tenant = Tenant::start(SimConfig::small());
    let sim = &tenant.sim;
    let directory = sim.directory();
    let victim = directory.users[0].id.clone();
    sim.set_faults(graph_sim::FaultPlan::none().with(
        graph_sim::FaultRule::probability(graph_sim::Fault::IncompleteJson, 1.0).on(
            graph_sim::Target::PathContains(format!("users/{victim}/chats/getAllMessages")),
        ),
    ));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("archive");
    assert_exit(&sync(&tenant, &out, &["--max-retries", "1"]), 3);
    sim.set_faults(graph_sim::FaultPlan::none());
    sim.advance_clock(Duration::from_secs(600));
    assert_exit(&sync(&tenant, &out, &[]), 0);
    let want = expected(&[&sim.snapshot()], &directory);
    assert_archive_holds(&out, &want);

    let files_before = e2e::parquet_files::all_files(&out);
    sim.reset_stats();
    sim.advance_clock(Duration::from_secs(600));
    assert_exit(&sync(&tenant, &out, &[]), 0);
    assert_eq!(
        e2e::parquet_files::all_files(&out),
        files_before,
        "a quiet run writes no data file"
    );
    let stats = sim.stats();
    let channels: u64 = directory
        .teams
        .iter()
        .map(|t| t.channels.len() as u64)
        .sum();
    assert_eq!(
        stats.total(EndpointKind::ChatMessagesDelta),
        directory.users.len() as u64,
        "one chat delta request per user: {:?}",
        stats.requests
    );
    assert_eq!(
        stats.total(EndpointKind::ChannelMessagesDelta),
        channels,
        "one delta request per channel: {:?}",
        stats.requests
    );
    assert_eq!(
        stats.total(EndpointKind::MailDelta),
        directory.mail_folders.len() as u64,
        "one delta request per mail folder: {:?}",
        stats.requests
    );
    for window in [
        EndpointKind::ChatMessagesWindow,
        EndpointKind::TeamMessagesWindow,
        EndpointKind::ChannelMessages,
        EndpointKind::Replies,
    ] {
        assert_eq!(stats.total(window), 0, "{window:?}: {:?}", stats.requests);
    }
}
