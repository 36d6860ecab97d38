//! `--shard K/N`: N processes write one archive at once without coordination. No scope
//! is fetched twice, nothing is lost, and the shipped views return every version once.

use std::collections::BTreeSet;

use e2e::assert_success;
use e2e::tenant::{Tenant, custodian_counts, expected_messages, small_tenant, version_counts};

const ARCHIVER: &str = env!("CARGO_BIN_EXE_archiver");

#[test]
fn three_shards_share_one_archive_without_loss_or_overlap() {
    let tenant = Tenant::start(small_tenant());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("archive");
    let out_text = out.to_str().unwrap();
    let shards: Vec<_> = (1..=3)
        .map(|k| {
            tenant
                .sync(ARCHIVER, out_text)
                .args([
                    "--source", "chats", "--source", "channels", "--source", "mail",
                ])
                .args(["--shard", &format!("{k}/3")])
                .stderr(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for shard in shards {
        let output = shard.wait_with_output().unwrap();
        assert_success("the archiver", &output);
    }

    // Each scope was read by exactly one shard.
    let directory = tenant.sim.directory();
    let mut keys = BTreeSet::new();
    for k in 1..=3 {
        let checkpoints = out.join(format!("_state/shard-{k}-of-3/checkpoints"));
        for entry in std::fs::read_dir(&checkpoints).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(keys.insert(name.clone()), "{name} is in two shards");
        }
    }
    let channels: usize = directory.teams.iter().map(|t| t.channels.len()).sum();
    assert_eq!(
        keys.len(),
        directory.users.len() + directory.teams.len() + channels + directory.mail_folders.len(),
        "every scope (chats per user, history per team, each channel, each mail folder) has exactly one checkpoint"
    );

    // Nothing lost; custodian rows once each; repeats only of chat messages shared by
    // custodians in different shards, which the views fold.
    let snapshot = tenant.sim.snapshot();
    let (versions, custodians) = expected_messages(&[&snapshot]);
    let archived = version_counts(&out, "chat_messages");
    assert_eq!(archived.keys().cloned().collect::<BTreeSet<_>>(), versions);
    assert!(archived.values().all(|n| *n <= 3));
    let archived_custodians = custodian_counts(&out);
    assert!(archived_custodians.values().all(|n| *n == 1));
    assert_eq!(
        archived_custodians.into_keys().collect::<BTreeSet<_>>(),
        custodians
    );
    let views = std::fs::read_to_string(e2e::repo_root().join("schemas/duckdb/views.sql"))
        .unwrap()
        .replace("${ARCHIVE}", out_text);
    let program = r#"
import sys, duckdb
con = duckdb.connect()
sql = "\n".join(l for l in sys.argv[1].splitlines() if not l.strip().startswith("--"))
# The views of chat_messages only: the shards archived chats, and DuckDB reads a view's
# files when it creates it.
for statement in sql.split(";"):
    if "VIEW chat_messages_" in statement:
        con.execute(statement)
print(con.execute("SELECT count(*), count(DISTINCT content_sha256) FROM chat_messages_all_versions").fetchone())
"#;
    let counts = e2e::run_python(program, &[&views]);
    assert_eq!(
        counts.trim(),
        format!("({}, {})", versions.len(), versions.len()),
        "the view returns each version once"
    );
}
