//! Test harness for the sink's crash tests (not a user tool): archives a fixed,
//! deterministic input of several scopes and pages the way `sync` does (append a
//! page's rows, commit with the checkpoints of the pages appended), resuming each
//! scope from its checkpoint. The tests kill it with SIGKILL at chosen protocol steps
//! (`--pause-at STEP:N` stops the process just before the Nth such step and prints
//! `PAUSED`) or at random moments, run it again, and check the archive.
//!
//! ```text
//! sink-crash-writer expected
//! sink-crash-writer run --archive URL --state URL [--index-dir DIR] [--pause-at STEP:N]
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use archive::TableSpec;
use arrow::array::{ArrayRef, Date32Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use sha2::{Digest, Sha256};
use sink::{ArchiveWriter, Checkpoint, WriterOptions};

const SCOPES: usize = 4;
const PAGES: usize = 16;
const ROWS_PER_PAGE: usize = 25;
/// A commit after this many pages, or sooner when the memory budget says so.
const PAGES_PER_COMMIT: usize = 3;
const MESSAGES: &str = "chat_messages";
const CUSTODIANS: &str = "chat_message_custodians";

fn messages_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new(
            "created_date_time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("body_content", DataType::Utf8, false),
        Field::new("content_sha256", DataType::Utf8, false),
        Field::new("date", DataType::Date32, false),
    ]))
}

fn custodians_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("custodian_user_id", DataType::Utf8, false),
        Field::new("content_sha256", DataType::Utf8, false),
        Field::new("date", DataType::Date32, false),
    ]))
}

fn tables() -> Vec<TableSpec> {
    vec![
        TableSpec {
            name: MESSAGES,
            schema: messages_schema(),
            partition_column: "date",
            key_columns: &["content_sha256"],
            key_day_column: Some("created_date_time"),
            order_columns: &[],
            statistics_columns: &[],
        },
        TableSpec {
            name: CUSTODIANS,
            schema: custodians_schema(),
            partition_column: "date",
            key_columns: &["custodian_user_id", "content_sha256"],
            key_day_column: None,
            order_columns: &[],
            statistics_columns: &[],
        },
    ]
}

struct Row {
    id: String,
    created_us: i64,
    body: String,
    sha: String,
}

/// Page `page` of scope `scope`: overlapping the previous page (a delta replay) and
/// other scopes (the same message held by several custodians), with some messages
/// edited into new versions as pages go on.
fn page_rows(scope: usize, page: usize) -> Vec<Row> {
    (0..ROWS_PER_PAGE)
        .map(|r| {
            let message = page * 20 + r + scope * 13;
            let version = if message.is_multiple_of(5) {
                page / 6
            } else {
                0
            };
            let created_us =
                1_714_521_600_000_000 + (message % 6) as i64 * 86_400_000_000 + message as i64;
            let body = format!("<p>message {message}, version {version}</p>");
            let id = format!("m{message}");
            let sha = hex::encode(Sha256::digest(format!("{id}|{created_us}|{body}")));
            Row {
                id,
                created_us,
                body,
                sha,
            }
        })
        .collect()
}

fn custodian(scope: usize) -> String {
    format!("user-{scope}")
}

fn scope_name(scope: usize) -> String {
    format!("chats/user-{scope}")
}

fn batches(scope: usize, page: usize) -> (RecordBatch, RecordBatch) {
    let rows = page_rows(scope, page);
    let days = || {
        rows.iter()
            .map(|r| r.created_us.div_euclid(86_400_000_000) as i32)
    };
    let messages: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.id.as_str()),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.created_us))
                .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.body.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.sha.as_str()),
        )),
        Arc::new(Date32Array::from_iter_values(days())),
    ];
    let custodians: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|_| custodian(scope)),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.sha.as_str()),
        )),
        Arc::new(Date32Array::from_iter_values(days())),
    ];
    (
        RecordBatch::try_new(messages_schema(), messages).expect("harness schema"),
        RecordBatch::try_new(custodians_schema(), custodians).expect("harness schema"),
    )
}

/// The keys each page holds, per scope: `{"<scope>": [[message sha, ...], ...]}` for
/// messages and `custodian|sha` for custodian rows.
fn print_expected() {
    let mut messages = BTreeMap::new();
    let mut custodians = BTreeMap::new();
    for scope in 0..SCOPES {
        let pages: Vec<Vec<String>> = (0..PAGES)
            .map(|page| page_rows(scope, page).into_iter().map(|r| r.sha).collect())
            .collect();
        custodians.insert(
            scope_name(scope),
            pages
                .iter()
                .map(|p| {
                    p.iter()
                        .map(|sha| format!("{}|{sha}", custodian(scope)))
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>(),
        );
        messages.insert(scope_name(scope), pages);
    }
    let expected = serde_json::json!({ "messages": messages, "custodians": custodians });
    println!("{expected}");
}

/// Stops the process just before the Nth protocol step of a name.
struct PauseAt {
    step: String,
    occurrence: usize,
    seen: AtomicUsize,
}

struct StepField(Option<String>);

impl tracing::field::Visit for StepField {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "step" {
            self.0 = Some(value.to_string());
        }
    }
    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

impl tracing::Subscriber for PauseAt {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == sink::PROTOCOL_TARGET
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut step = StepField(None);
        event.record(&mut step);
        if step.0.as_deref() == Some(self.step.as_str())
            && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.occurrence
        {
            println!("PAUSED {} {}", self.step, self.occurrence);
            std::io::stdout().flush().ok();
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

async fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let archive = arg(args, "--archive").ok_or("--archive is required")?;
    let state = arg(args, "--state").ok_or("--state is required")?;
    if let Some(pause) = arg(args, "--pause-at") {
        let (step, occurrence) = pause.split_once(':').ok_or("--pause-at STEP:N")?;
        sink::ProtocolStep::from_name(step).ok_or("--pause-at: no such protocol step")?;
        tracing::subscriber::set_global_default(PauseAt {
            step: step.to_string(),
            occurrence: occurrence.parse()?,
            seen: AtomicUsize::new(0),
        })?;
    }
    let options = WriterOptions {
        memory_budget_bytes: 48 * 1024,
        run_id: format!("crash-{}", std::process::id()),
        index_dir: arg(args, "--index-dir").map(Into::into),
        ..Default::default()
    };
    let (mut writer, recovery) = ArchiveWriter::open(&archive, &state, tables(), options).await?;
    println!(
        "OPENED recovered={:?} committed={} forgotten={}",
        recovery.recovered_commit,
        recovery.files_committed.len(),
        recovery.files_forgotten.len()
    );

    let mut next_page = Vec::with_capacity(SCOPES);
    for scope in 0..SCOPES {
        let checkpoint = writer.checkpoints().load(&scope_name(scope)).await?;
        let page = checkpoint
            .and_then(|c| c["next_page"].as_u64())
            .unwrap_or(0) as usize;
        next_page.push(page);
    }
    let mut pending: BTreeMap<usize, usize> = BTreeMap::new();
    let mut pages_since_commit = 0;
    loop {
        let mut progressed = false;
        for (scope, next) in next_page.iter_mut().enumerate() {
            if *next >= PAGES {
                continue;
            }
            let (messages, custodians) = batches(scope, *next);
            writer.append(MESSAGES, &messages)?;
            writer.append(CUSTODIANS, &custodians)?;
            *next += 1;
            pending.insert(scope, *next);
            pages_since_commit += 1;
            progressed = true;
            if writer.needs_commit() || pages_since_commit >= PAGES_PER_COMMIT {
                commit(&mut writer, &mut pending).await?;
                pages_since_commit = 0;
            }
        }
        if !progressed {
            break;
        }
    }
    commit(&mut writer, &mut pending).await?;
    println!("DONE");
    Ok(())
}

async fn commit(
    writer: &mut ArchiveWriter,
    pending: &mut BTreeMap<usize, usize>,
) -> Result<(), sink::SinkError> {
    let checkpoints = std::mem::take(pending)
        .into_iter()
        .map(|(scope, page)| Checkpoint {
            scope: scope_name(scope),
            value: serde_json::json!({ "next_page": page }),
        })
        .collect();
    let report = writer.commit(checkpoints).await?;
    println!(
        "COMMITTED files={} rows={}",
        report.files.len(),
        report.rows
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("expected") => print_expected(),
        Some("run") => {
            if let Err(e) = run(&args).await {
                eprintln!("sink-crash-writer: {e}");
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!(
                "usage: sink-crash-writer expected | run --archive URL --state URL [--index-dir DIR] [--pause-at STEP:N]"
            );
            std::process::exit(2);
        }
    }
}
