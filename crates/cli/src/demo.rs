//! `teams-archiver demo`: the whole pipeline against the embedded Graph simulator, so a
//! newcomer sees a first run, changes, an incremental run, and what to query.

use anyhow::Context;
use graph_sim::SimConfig;

use crate::args::{DemoArgs, GraphArgs, SourceKind, SyncArgs, TargetArgs};
use crate::progress::Display;
use crate::sync_cmd;
use archive::records::Outcome;

pub async fn run(args: DemoArgs, progress: Display) -> anyhow::Result<Outcome> {
    // Channels are read at Graph's 4 requests/s per team, so the demo keeps them few.
    let config = SimConfig {
        seed: args.seed,
        users: args.users.max(2),
        teams: 2,
        channels_per_team: 2,
        messages_per_channel: 8,
        max_replies_per_message: 3,
        ..SimConfig::demo()
    };
    // Each demo simulates a new tenant: an archive of an earlier one would hold links
    // into a simulator that is gone.
    if std::fs::read_dir(&args.out).is_ok_and(|mut entries| entries.next().is_some()) {
        anyhow::bail!(
            "{} is not empty: the demo simulates a new tenant each time, so it writes a new archive; give a new --out, or remove that folder",
            args.out.display()
        );
    }
    let sim = graph_sim::start(config)
        .await
        .context("starting the Graph simulator")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let out = std::fs::canonicalize(&args.out)
        .with_context(|| format!("resolving {}", args.out.display()))?;
    let out_text = out.display().to_string();
    outln!(
        "Simulated Microsoft Graph tenant at {} ({} users); archiving into {out_text}\n",
        sim.graph_url(),
        args.users.max(2)
    );

    let sync_args = SyncArgs {
        graph: GraphArgs {
            tenant_id: sim.tenant_id().to_string(),
            client_id: sim.client_id().to_string(),
            client_secret_file: None,
            certificate: None,
            client_secret: Some(sim.client_secret().to_string()),
            graph_url: sim.graph_url().to_string(),
            login_url: sim.login_url().to_string(),
            // The simulator serves plain HTTP on the loopback address.
            allow_insecure_http: true,
        },
        target: TargetArgs {
            out: out_text.clone(),
            state: None,
            signing_key: None,
        },
        sources: vec![SourceKind::Chats, SourceKind::Channels, SourceKind::Mail],
        users: Vec::new(),
        teams: Vec::new(),
        shard: None,
        concurrency: 16,
        since: None,
        memory_budget_mib: std::num::NonZeroUsize::new(256).expect("not zero"),
        commit_interval: 60,
        page_size: 50,
        max_retries: 8,
        payment_model: crate::args::PaymentModel::A,
        content: crate::args::ContentMode::All,
        content_max_mib: 256,
        mail_mime: false,
    };

    outln!("== First run: everything the tenant holds");
    let first = sync_cmd::run(sync_args.clone(), progress).await?;
    if first != Outcome::Success {
        return Ok(first);
    }

    let changes = sim
        .make_a_night_of_changes()
        .context("changing the simulated tenant")?;
    outln!("\n== Changes in the tenant: {changes}");
    outln!("\n== Second run: only what changed");
    let second = sync_cmd::run(sync_args, progress).await?;
    sim.shutdown().await;

    let glob = |table: &str| {
        format!("read_parquet('{out_text}/{table}/*/*.parquet', hive_partitioning = true)")
    };
    outln!(
        r#"
Archive written to {out_text}. Try it with DuckDB (pip install duckdb; then `duckdb` or python -c):

  -- messages per day
  SELECT date, count(*) AS versions FROM {messages} GROUP BY date ORDER BY date DESC LIMIT 10;

  -- every version of edited or deleted messages, oldest first
  SELECT id, last_modified_date_time, deleted_date_time IS NOT NULL AS deleted, body_text
  FROM {messages}
  WHERE id IN (SELECT id FROM {messages} GROUP BY id HAVING count(*) > 1)
  ORDER BY id, last_modified_date_time;

  -- who held which chat message (custodians)
  SELECT custodian_user_id, count(*) FROM {custodians} GROUP BY 1 ORDER BY 2 DESC;

  -- mail removals seen by delta
  SELECT date, id, removed_reason FROM {mail} WHERE removed;

  -- images, files and attachments, stored once each under blobs/sha256/
  SELECT kind, status, count(*) AS pieces, count(DISTINCT blob_sha256) AS blobs
  FROM {contents} GROUP BY ALL ORDER BY ALL;

Views for DuckDB and Spark are in schemas/duckdb/views.sql and schemas/spark/views.sql.
Run `teams-archiver status --out {out_text}` to see checkpoints and runs."#,
        messages = glob("chat_messages"),
        custodians = glob("chat_message_custodians"),
        mail = glob("mail_messages"),
        contents = glob("message_contents"),
    );
    Ok(second)
}
