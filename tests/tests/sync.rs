//! `teams-archiver sync` end to end against the Graph simulator over real HTTP: a first
//! run archives exactly the tenant, a second run exactly what changed, a quiet run
//! nothing; on local disk and on moto's S3 server.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use e2e::output_text;
use e2e::tenant::{
    Tenant, custodian_counts, expected_mail, expected_messages, small_tenant, version_counts,
};
use graph_sim::{Conversation, EndpointKind};

const ARCHIVER: &str = env!("CARGO_BIN_EXE_archiver");

fn sync_all(tenant: &Tenant, out: &str, env: &[(&str, String)]) -> Output {
    let output = tenant
        .sync(ARCHIVER, out)
        .args([
            "--source", "chats", "--source", "channels", "--source", "mail",
        ])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("the archiver starts");
    assert_eq!(
        output.status.code(),
        Some(0),
        "sync failed:\n{}",
        output_text(&output)
    );
    output
}

/// Every version exactly once, every custodian row exactly once, and nothing else.
fn assert_archive_holds(archive: &Path, snapshots: &[&graph_sim::Snapshot], removals: &[String]) {
    let (versions, custodians) = expected_messages(snapshots);
    let archived = version_counts(archive, "chat_messages");
    let repeated: Vec<_> = archived.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "versions stored twice: {repeated:?}");
    let archived: BTreeSet<String> = archived.into_keys().collect();
    assert_eq!(
        archived.difference(&versions).count(),
        0,
        "rows the tenant never had"
    );
    assert_eq!(
        versions.difference(&archived).count(),
        0,
        "versions missing from the archive"
    );

    let archived_custodians = custodian_counts(archive);
    assert!(
        archived_custodians.values().all(|n| *n == 1),
        "a custodian row twice"
    );
    let archived_custodians: BTreeSet<_> = archived_custodians.into_keys().collect();
    assert_eq!(archived_custodians, custodians, "custodian rows");

    let mail = version_counts(archive, "mail_messages");
    assert!(mail.values().all(|n| *n == 1), "a mail version twice");
    let removed_ids: BTreeSet<String> =
        e2e::parquet_files::rows(archive, "mail_messages", &["id", "removed"])
            .into_iter()
            .filter(|r| r["removed"].as_deref() == Some("true"))
            .map(|r| r["id"].clone().expect("a removal names its message"))
            .collect();
    assert_eq!(
        removed_ids,
        removals.iter().cloned().collect::<BTreeSet<_>>()
    );
    let expected_mail = expected_mail(snapshots);
    let archived_mail: BTreeSet<String> = mail.into_keys().collect();
    assert_eq!(
        expected_mail.difference(&archived_mail).count(),
        0,
        "mail versions missing"
    );
    assert_eq!(
        archived_mail.len(),
        expected_mail.len() + removed_ids.len(),
        "mail rows are the versions plus the removals"
    );
}

fn change_tenant(tenant: &Tenant) -> Vec<String> {
    let sim = &tenant.sim;
    let snapshot = sim.snapshot();
    let directory = sim.directory();
    let chat: Vec<_> = snapshot
        .messages
        .iter()
        .filter(|m| matches!(m.conversation, Conversation::Chat { .. }) && !m.deleted)
        .collect();
    sim.edit_message(&chat[0].message_ref(), "<p>edited once</p>")
        .unwrap();
    sim.edit_message(&chat[1].message_ref(), "<p>edited</p>")
        .unwrap();
    sim.soft_delete_message(&chat[2].message_ref()).unwrap();
    let room = &directory.chats[0];
    sim.add_chat_message(&room.id, &room.member_ids[0], "<p>new message</p>")
        .unwrap();
    let root = snapshot
        .messages
        .iter()
        .find(|m| m.reply_to_id.is_none() && matches!(m.conversation, Conversation::Channel { .. }))
        .unwrap();
    let Conversation::Channel {
        team_id,
        channel_id,
    } = &root.conversation
    else {
        unreachable!()
    };
    sim.add_reply(
        team_id,
        channel_id,
        &root.id,
        &directory.users[0].id,
        "<p>a reply</p>",
    )
    .unwrap();
    let mail = &snapshot.mail[0];
    sim.update_mail(&mail.user_id, &mail.folder_id, &snapshot.mail[1].id)
        .unwrap_or_else(|_| {
            sim.update_mail(&mail.user_id, &mail.folder_id, &mail.id)
                .unwrap()
        });
    sim.delete_mail(&mail.user_id, &mail.folder_id, &mail.id)
        .unwrap();
    vec![mail.id.clone()]
}

#[test]
fn first_run_archives_the_tenant_second_run_the_changes_quiet_run_nothing() {
    let tenant = Tenant::start(small_tenant());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("archive");
    let out_text = out.to_str().unwrap();

    sync_all(&tenant, out_text, &[]);
    let first = tenant.sim.snapshot();
    assert_archive_holds(&out, &[&first], &[]);

    let removals = change_tenant(&tenant);
    sync_all(&tenant, out_text, &[]);
    let second = tenant.sim.snapshot();
    assert_archive_holds(&out, &[&first, &second], &removals);

    // Nothing changed: one request per scope, nothing new written.
    let files = e2e::parquet_files::all_files(&out);
    tenant.sim.reset_stats();
    let quiet = sync_all(&tenant, out_text, &[]);
    assert_eq!(
        e2e::parquet_files::all_files(&out),
        files,
        "{}",
        output_text(&quiet)
    );
    let stats = tenant.sim.stats();
    let directory = tenant.sim.directory();
    let users = directory.users.len() as u64;
    let channels: u64 = directory
        .teams
        .iter()
        .map(|t| t.channels.len() as u64)
        .sum();
    let folders = directory.mail_folders.len() as u64;
    assert_eq!(
        stats.total(EndpointKind::ChatMessagesDelta),
        users,
        "{stats:?}"
    );
    assert_eq!(stats.total(EndpointKind::ChannelMessagesDelta), channels);
    assert_eq!(stats.total(EndpointKind::MailDelta), folders);
    assert_eq!(stats.total(EndpointKind::Replies), 0, "no thread changed");
    assert_eq!(stats.total(EndpointKind::UserChats), 0, "no chat changed");
    assert!(
        output_text(&quiet).contains(" 0 new versions stored"),
        "{}",
        output_text(&quiet)
    );
}

#[test]
fn sync_to_s3_keeps_every_version_once() {
    let tenant = Tenant::start(small_tenant());
    let bucket = e2e::create_bucket("sync", true);
    let url = format!("s3://{bucket}/teams");
    let env = e2e::s3_env();
    sync_all(&tenant, &url, &env);
    let first = tenant.sim.snapshot();
    let removals = change_tenant(&tenant);
    sync_all(&tenant, &url, &env);
    let second = tenant.sim.snapshot();

    let local = tempfile::tempdir().unwrap();
    e2e::download_bucket(&bucket, "teams", local.path());
    assert_archive_holds(local.path(), &[&first, &second], &removals);
    assert!(local.path().join("_archive/runs").is_dir());
    assert!(local.path().join("_state/checkpoints").is_dir());
}

#[test]
fn a_scope_whose_pages_stay_broken_fails_alone_and_the_exit_code_says_so() {
    let tenant = Tenant::start(small_tenant());
    let directory = tenant.sim.directory();
    let victim = &directory.users[0].id;
    tenant.sim.set_faults(graph_sim::FaultPlan::none().with(
        graph_sim::FaultRule::probability(graph_sim::Fault::IncompleteJson, 1.0).on(
            graph_sim::Target::PathContains(format!("users/{victim}/chats/getAllMessages")),
        ),
    ));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("archive");
    let output = tenant
        .sync(ARCHIVER, out.to_str().unwrap())
        .args(["--source", "chats", "--max-retries", "2"])
        .output()
        .unwrap();
    let all = output_text(&output);
    assert_eq!(output.status.code(), Some(3), "{all}");
    assert!(all.contains(&format!("chats of user {victim}")), "{all}");
    // Every other user's chats are archived.
    let snapshot = tenant.sim.snapshot();
    let archived: BTreeSet<String> = version_counts(&out, "chat_messages").into_keys().collect();
    for user in directory.users.iter().skip(1) {
        for message in snapshot.chat_messages_of(&user.id) {
            assert!(
                archived.contains(&e2e::tenant::content_hash(&message.json)),
                "a message of {} is missing",
                user.id
            );
        }
    }
}

#[test]
fn bad_credentials_are_fatal_and_name_the_problem() {
    let tenant = Tenant::start(small_tenant());
    let dir = tempfile::tempdir().unwrap();
    let output = tenant
        .sync(ARCHIVER, dir.path().join("a").to_str().unwrap())
        .env("TEAMS_ARCHIVER_CLIENT_SECRET", "not-the-secret")
        .output()
        .unwrap();
    let all = output_text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(
        !all.contains("not-the-secret"),
        "the secret is never printed:\n{all}"
    );
    assert!(
        all.to_lowercase().contains("secret")
            || all.contains("401")
            || all.contains("invalid_client"),
        "{all}"
    );
}

/// Every file under `dir` except the state store, as text.
fn archive_texts(dir: &Path) -> Vec<(String, String)> {
    let mut texts = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "_state") {
                    stack.push(path);
                }
            } else {
                let bytes = std::fs::read(&path).unwrap();
                texts.push((
                    path.display().to_string(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                ));
            }
        }
    }
    texts
}

#[test]
fn secrets_and_tokens_never_reach_logs_or_archive_files() {
    let tenant = Tenant::start(small_tenant());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("archive");
    let run = |extra: &[&str]| {
        let output = tenant
            .sync(ARCHIVER, out.to_str().unwrap())
            .args([
                "--source", "chats", "--source", "channels", "--source", "mail",
            ])
            .args(extra)
            .env("RUST_LOG", "trace")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", output_text(&output));
        output_text(&output)
    };
    let mut logs = run(&["--log-format", "json"]);
    change_tenant(&tenant);
    tenant.sim.expire_access_tokens();
    logs.push_str(&run(&[]));

    let mut secrets = vec![tenant.sim.client_secret().to_string()];
    secrets.extend(tenant.sim.issued_access_tokens());
    secrets.extend(tenant.sim.issued_state_tokens());
    assert!(secrets.len() > 3, "the tenant recorded its tokens");
    let files = archive_texts(&out);
    assert!(files.iter().any(|(p, _)| p.contains("_archive/runs")));
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret or token is in the log"
        );
        for (path, content) in &files {
            assert!(
                !content.contains(secret.as_str()),
                "a secret or token is in {path}"
            );
        }
    }
}
