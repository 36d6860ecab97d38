//! `sync` flags a first deployment relies on: certificate login, `--since`, `--user`
//! and `--team`.

use std::collections::BTreeSet;

use e2e::assert_success;
use e2e::tenant::{Tenant, content_hash, small_tenant, version_counts};
use graph_sim::Conversation;

const ARCHIVER: &str = env!("CARGO_BIN_EXE_archiver");

fn hashes(messages: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    messages
        .into_iter()
        .map(|json| content_hash(&json))
        .collect()
}

#[test]
fn a_certificate_logs_in_without_any_secret() {
    let tenant = Tenant::start(small_tenant());
    let dir = tempfile::tempdir().unwrap();
    let certificate = tenant.sim.client_certificate();
    let pem = dir.path().join("app.pem");
    std::fs::write(
        &pem,
        format!(
            "{}\n{}",
            certificate.private_key_pem, certificate.certificate_pem
        ),
    )
    .unwrap();
    let out = dir.path().join("archive");
    let output = tenant
        .sync(ARCHIVER, out.to_str().unwrap())
        .env_remove("TEAMS_ARCHIVER_CLIENT_SECRET")
        .arg("--certificate")
        .arg(&pem)
        .args(["--source", "chats"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    assert!(!log.contains("PRIVATE KEY"), "the key is never logged");
    let snapshot = tenant.sim.snapshot();
    let expected = hashes(
        snapshot
            .messages
            .iter()
            .filter(|m| matches!(m.conversation, Conversation::Chat { .. }))
            .map(|m| m.json.clone()),
    );
    let archived: BTreeSet<String> = version_counts(&out, "chat_messages").into_keys().collect();
    assert_eq!(archived, expected);
}

#[test]
fn since_archives_only_later_changes_and_the_next_run_goes_on_by_delta() {
    let tenant = Tenant::start(small_tenant());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("archive");
    let since = tenant.sim.now() - chrono::Duration::days(20);
    let run = |extra: &[&str]| {
        let output = tenant
            .sync(ARCHIVER, out.to_str().unwrap())
            .args(["--source", "chats"])
            .args(extra)
            .output()
            .unwrap();
        assert_success("the archiver", &output);
    };
    run(&["--since", &since.to_rfc3339()]);
    let chat = |m: &&graph_sim::MessageVersion| matches!(m.conversation, Conversation::Chat { .. });
    let snapshot = tenant.sim.snapshot();
    let recent = hashes(
        snapshot
            .messages
            .iter()
            .filter(chat)
            .filter(|m| m.last_modified > since)
            .map(|m| m.json.clone()),
    );
    let older = snapshot.messages.iter().filter(chat).count() - recent.len();
    assert!(
        !recent.is_empty() && older > 0,
        "the cut falls inside the history"
    );
    let archived: BTreeSet<String> = version_counts(&out, "chat_messages").into_keys().collect();
    assert_eq!(archived, recent, "only changes after --since");

    // An edit to an old message is a change after --since: the next run picks it up.
    let old = snapshot
        .messages
        .iter()
        .filter(chat)
        .find(|m| m.last_modified <= since)
        .unwrap();
    let edited = tenant
        .sim
        .edit_message(&old.message_ref(), "<p>revisited</p>")
        .unwrap();
    run(&[]);
    let archived: BTreeSet<String> = version_counts(&out, "chat_messages").into_keys().collect();
    let mut expected = recent;
    expected.insert(content_hash(&edited.json));
    assert_eq!(archived, expected);
}

#[test]
fn user_and_team_filters_narrow_the_scopes() {
    let tenant = Tenant::start(small_tenant());
    let directory = tenant.sim.directory();
    let user = &directory.users[1];
    let team = &directory.teams[0];
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("archive");
    let output = tenant
        .sync(ARCHIVER, out.to_str().unwrap())
        .args(["--source", "chats", "--source", "channels"])
        .args(["--user", &user.user_principal_name, "--team", &team.id])
        .output()
        .unwrap();
    assert_success("the archiver", &output);
    let snapshot = tenant.sim.snapshot();
    let expected = hashes(
        snapshot
            .messages
            .iter()
            .filter(|m| match &m.conversation {
                Conversation::Chat { .. } => m.custodians.contains(&user.id),
                Conversation::Channel { team_id, .. } => team_id == &team.id,
            })
            .map(|m| m.json.clone()),
    );
    let archived: BTreeSet<String> = version_counts(&out, "chat_messages").into_keys().collect();
    assert_eq!(archived, expected);

    let unknown = tenant
        .sync(ARCHIVER, out.to_str().unwrap())
        .args(["--user", "nobody@example.com"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nobody@example.com"));
}

#[test]
fn status_only_reads_a_mistyped_path_is_reported_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("archvie");
    let output = std::process::Command::new(ARCHIVER)
        .args(["status", "--out"])
        .arg(&typo)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("archvie"),
        "the error names the path"
    );
    assert!(!typo.exists(), "status created {}", typo.display());
    let verify = std::process::Command::new(ARCHIVER)
        .args(["verify", "--archive"])
        .arg(&typo)
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(1));
    assert!(!typo.exists(), "verify created {}", typo.display());
}
