//! Crash safety, proven by killing the real process: `sync` is SIGKILLed at many moments
//! (between pages, inside commits, between files and checkpoints), then run again, and
//! the archive must hold every version of the tenant exactly once. The same under 429
//! and 503 storms with connection resets, and across a resync after an expired delta
//! token.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use e2e::tenant::{Tenant, custodian_counts, expected_mail, expected_messages, version_counts};
use e2e::{assert_success, run_summaries};
use graph_sim::{Conversation, Fault, FaultPlan, FaultRule, RetryAfter, SimConfig, Snapshot};
use pipeline::sync::scope::PAGE_TARGET;
use sink::ProtocolStep;

const ARCHIVER: &str = env!("CARGO_BIN_EXE_archiver");

/// Small pages and a tiny memory budget make many pages and many commits per run.
fn sync(tenant: &Tenant, out: &Path) -> Command {
    let mut command = tenant.sync_every_source(ARCHIVER, out.to_str().unwrap());
    command
        .args([
            "--page-size",
            "4",
            "--memory-budget-mib",
            "1",
            "--commit-interval",
            "1",
        ])
        .args(["--max-retries", "12", "--log-format", "json"])
        .env(
            "RUST_LOG",
            format!("warn,{}=debug,{}=debug", sink::PROTOCOL_TARGET, PAGE_TARGET),
        );
    command
}

/// A progress event of a run: a page read, or a step of the commit protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Page,
    Step(ProtocolStep),
}

/// The progress event of a JSON log line, if it is one.
fn event(line: &str) -> Option<Event> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    match value.get("target").and_then(|t| t.as_str())? {
        target if target == sink::PROTOCOL_TARGET => {
            ProtocolStep::from_name(value.get("step")?.as_str()?).map(Event::Step)
        }
        target if target == PAGE_TARGET => Some(Event::Page),
        _ => None,
    }
}

/// Runs sync to the end and returns the events it logged, in order.
fn events_of_a_run(tenant: &Tenant, out: &Path) -> Vec<Event> {
    let output = sync(tenant, out).output().unwrap();
    assert_success("the archiver", &output);
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter_map(event)
        .collect()
}

/// When to kill: after the `n`th event of any kind, or the `n`th event of one kind.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum KillPoint {
    Any(usize),
    Nth(Event, usize),
}

/// Starts sync and SIGKILLs it right after the chosen event. Returns the event killed
/// at, or `None` if the run finished first.
fn kill_at(tenant: &Tenant, out: &Path, point: &KillPoint) -> Option<Event> {
    signal_at(tenant, out, point, "KILL").0
}

/// Starts sync and sends it `signal` right after the chosen event. Returns the event it
/// was sent at (`None` if the run finished first), how the run ended, and what it wrote
/// to stderr after the signal.
fn signal_at(
    tenant: &Tenant,
    out: &Path,
    point: &KillPoint,
    signal: &str,
) -> (Option<Event>, std::process::ExitStatus, String) {
    let mut child = sync(tenant, out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut seen = 0;
    let mut seen_of_kind: std::collections::BTreeMap<Event, usize> = Default::default();
    let mut killed_at = None;
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        let Some(label) = event(&line) else { continue };
        seen += 1;
        let of_kind = seen_of_kind.entry(label).or_insert(0);
        *of_kind += 1;
        let hit = match point {
            KillPoint::Any(n) => seen == *n,
            KillPoint::Nth(kind, n) => kind == &label && *of_kind == *n,
        };
        if hit {
            // SIGKILL leaves no destructor, no flush, no goodbye.
            let sent = Command::new("kill")
                .args([format!("-{signal}"), child.id().to_string()])
                .status()
                .unwrap();
            assert!(sent.success());
            killed_at = Some(label);
            break;
        }
    }
    let after: String = lines.map_while(Result::ok).map(|l| l + "\n").collect();
    (killed_at, child.wait().unwrap(), after)
}

fn kill_after(tenant: &Tenant, out: &Path, n: usize) -> Option<Event> {
    kill_at(tenant, out, &KillPoint::Any(n))
}

fn finish(tenant: &Tenant, out: &Path) {
    let output = sync(tenant, out).output().unwrap();
    assert!(
        output.status.success(),
        "the rerun after a crash failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every version exactly once, nothing else.
fn assert_exactly_once(out: &Path, snapshots: &[&Snapshot], removals: usize, what: &str) {
    let (versions, custodians) = expected_messages(snapshots);
    let archived = version_counts(out, "chat_messages");
    let twice: Vec<_> = archived.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{what}: versions stored twice: {twice:?}");
    assert_eq!(
        archived.into_keys().collect::<BTreeSet<_>>(),
        versions,
        "{what}: chat and channel versions"
    );
    let archived_custodians = custodian_counts(out);
    assert!(
        archived_custodians.values().all(|n| *n == 1),
        "{what}: custodian row twice"
    );
    assert_eq!(
        archived_custodians.into_keys().collect::<BTreeSet<_>>(),
        custodians,
        "{what}: custodian rows"
    );
    let mail = version_counts(out, "mail_messages");
    assert!(
        mail.values().all(|n| *n == 1),
        "{what}: a mail version twice"
    );
    let expected = expected_mail(snapshots);
    let archived: BTreeSet<_> = mail.into_keys().collect();
    assert!(
        expected.is_subset(&archived),
        "{what}: mail versions missing"
    );
    assert_eq!(
        archived.len(),
        expected.len() + removals,
        "{what}: mail rows"
    );
}

/// Kill points over a run's events: the first, middle and last event of every kind
/// (pages and each commit step), and moments spread over the whole run.
fn kill_points(events: &[Event], spread: usize) -> Vec<KillPoint> {
    let mut counts: std::collections::BTreeMap<Event, usize> = Default::default();
    for label in events {
        *counts.entry(*label).or_insert(0) += 1;
    }
    let mut points: BTreeSet<KillPoint> = (1..=spread)
        .map(|i| KillPoint::Any(i * events.len() / (spread + 1)))
        .filter(|p| *p != KillPoint::Any(0))
        .collect();
    for (kind, n) in counts {
        for k in [1, n.div_ceil(2), n] {
            points.insert(KillPoint::Nth(kind, k));
        }
    }
    points.into_iter().collect()
}

fn tenant() -> SimConfig {
    SimConfig {
        users: 4,
        messages_per_user: 16,
        teams: 1,
        channels_per_team: 2,
        messages_per_channel: 8,
        max_replies_per_message: 2,
        mail_per_user: 6,
        ..SimConfig::small()
    }
}

/// A first run archived the tenant, then the tenant changed: the snapshots before and
/// after the change, with the number of removals in between.
fn archive_then_change(tenant: &Tenant, dir: &Path) -> (Snapshot, usize, Snapshot) {
    finish(tenant, dir);
    let first = tenant.sim.snapshot();
    let removals = change(tenant);
    (first, removals, tenant.sim.snapshot())
}

fn change(tenant: &Tenant) -> usize {
    let sim = &tenant.sim;
    let snapshot = sim.snapshot();
    let directory = sim.directory();
    let chats: Vec<_> = snapshot
        .messages
        .iter()
        .filter(|m| matches!(m.conversation, Conversation::Chat { .. }) && !m.deleted)
        .collect();
    sim.edit_message(&chats[0].message_ref(), "<p>edit</p>")
        .unwrap();
    sim.soft_delete_message(&chats[1].message_ref()).unwrap();
    let room = &directory.chats[0];
    sim.add_chat_message(&room.id, &room.member_ids[0], "<p>new</p>")
        .unwrap();
    let mail = &snapshot.mail[0];
    sim.delete_mail(&mail.user_id, &mail.folder_id, &mail.id)
        .unwrap();
    1
}

#[test]
fn killed_at_any_moment_a_rerun_leaves_every_version_exactly_once() {
    let tenant = Tenant::start(tenant());
    let probe = tempfile::tempdir().unwrap();
    let events = events_of_a_run(&tenant, probe.path());
    let snapshot = tenant.sim.snapshot();
    let points = kill_points(&events, 8);
    assert!(
        points.len() >= 20,
        "{} kill points from {} events",
        points.len(),
        events.len()
    );
    let mut kinds = BTreeSet::new();
    for point in points {
        let dir = tempfile::tempdir().unwrap();
        let killed_at = kill_at(&tenant, dir.path(), &point);
        if let Some(label) = killed_at {
            kinds.insert(label);
        }
        finish(&tenant, dir.path());
        assert_exactly_once(
            dir.path(),
            &[&snapshot],
            0,
            &format!("killed at {point:?} ({killed_at:?})"),
        );
    }
    for event in [
        Event::Page,
        Event::Step(ProtocolStep::WriteAhead),
        Event::Step(ProtocolStep::WriteFile),
        Event::Step(ProtocolStep::CommitRecord),
        Event::Step(ProtocolStep::Index),
        Event::Step(ProtocolStep::Checkpoints),
    ] {
        assert!(
            kinds.contains(&event),
            "no kill landed at {event:?}: {kinds:?}"
        );
    }
}

/// SIGTERM and SIGINT (Ctrl-C) stop a run at once, with a line saying so and exit code
/// 128 + the signal; the rerun stores every version exactly once.
#[test]
fn stopped_by_sigterm_or_sigint_a_run_says_so_and_a_rerun_loses_nothing() {
    let tenant = Tenant::start(tenant());
    let snapshot = tenant.sim.snapshot();
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let dir = tempfile::tempdir().unwrap();
        let point = KillPoint::Nth(Event::Step(ProtocolStep::WriteFile), 1);
        let (sent_at, status, after) = signal_at(&tenant, dir.path(), &point, signal);
        assert!(sent_at.is_some(), "the run ended before SIG{signal}");
        assert_eq!(status.code(), Some(code), "SIG{signal}: {after}");
        assert!(
            after.contains(&format!("stopped by SIG{signal}")),
            "{after}"
        );
        finish(&tenant, dir.path());
        assert_exactly_once(dir.path(), &[&snapshot], 0, &format!("SIG{signal}"));
    }
}

#[test]
fn killed_repeatedly_during_an_incremental_run_under_throttling_and_resets() {
    let tenant = Tenant::start(tenant());
    let dir = tempfile::tempdir().unwrap();
    let (first, removals, second) = archive_then_change(&tenant, dir.path());
    tenant.sim.set_faults(
        FaultPlan::none()
            .with(FaultRule::probability(
                Fault::TooManyRequests {
                    retry_after: RetryAfter::Millis(50),
                },
                0.15,
            ))
            .with(FaultRule::probability(
                Fault::ServiceUnavailable {
                    retry_after: RetryAfter::Seconds(1),
                },
                0.05,
            ))
            .with(FaultRule::probability(Fault::ConnectionReset, 0.05))
            .with(FaultRule::probability(Fault::TruncatedBody, 0.03)),
    );
    // Kill the same archive's runs again and again, a little later each time.
    for n in [2, 3, 5, 8, 13] {
        kill_after(&tenant, dir.path(), n);
    }
    finish(&tenant, dir.path());
    assert_exactly_once(
        dir.path(),
        &[&first, &second],
        removals,
        "incremental run under faults",
    );
}

#[test]
fn an_expired_delta_token_resyncs_without_loss_or_repeats_even_when_killed() {
    let tenant = Tenant::start(tenant());
    let dir = tempfile::tempdir().unwrap();
    let (first, removals, second) = archive_then_change(&tenant, dir.path());
    tenant.sim.expire_state_tokens();
    kill_after(&tenant, dir.path(), 6);
    let output = sync(&tenant, dir.path()).output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    // Graph does not report a removal that happened while it had forgotten the delta
    // state: the message's versions stay archived, but no removal row can be written.
    let _ = removals;
    assert_exactly_once(dir.path(), &[&first, &second], 0, "after a resync");
    let resyncs: u64 = run_summaries(dir.path())
        .iter()
        .flat_map(|summary| &summary.scopes)
        .map(|scope| u64::from(scope.resyncs))
        .sum();
    assert!(resyncs > 0, "the run summaries record the resyncs");
}

/// Pages read by the runs whose summaries are in the archive, per run.
fn pages_per_run(out: &Path) -> Vec<u64> {
    run_summaries(out)
        .iter()
        .map(|summary| summary.scopes.iter().map(|s| s.pages).sum())
        .collect()
}

#[test]
fn a_long_first_round_killed_late_resumes_from_its_last_commit() {
    let tenant = Tenant::start(tenant());
    let probe = tempfile::tempdir().unwrap();
    let events = events_of_a_run(&tenant, probe.path());
    let full = pages_per_run(probe.path())[0];
    let checkpoints = Event::Step(ProtocolStep::Checkpoints);
    let commits = events.iter().filter(|e| **e == checkpoints).count();
    assert!(commits >= 4, "the run commits part-way: {commits} commits");

    let dir = tempfile::tempdir().unwrap();
    let killed = kill_at(
        &tenant,
        dir.path(),
        &KillPoint::Nth(checkpoints, commits - 1),
    );
    assert_eq!(killed, Some(checkpoints));
    finish(&tenant, dir.path());
    let rerun = pages_per_run(dir.path());
    assert_eq!(rerun.len(), 1, "only the rerun finished");
    assert!(
        rerun[0] < full,
        "the rerun read {} pages of a {full}-page round: it did not resume",
        rerun[0]
    );
    assert_exactly_once(dir.path(), &[&tenant.sim.snapshot()], 0, "resumed");
}
