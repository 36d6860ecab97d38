//! Throughput of the writer on local disk for message-like rows: a wide batch (25
//! columns) with a large string column (`raw_json`, ~3 KB a row), over 7 partitions.
//!
//! `cargo bench -p sink --bench commit` (use `CARGO_TARGET_DIR=target-release`). Items
//! are rows; bytes are the Arrow memory of the appended batches.

use std::sync::Arc;

use archive::TableSpec;
use arrow::array::{
    ArrayRef, Date32Array, ListBuilder, RecordBatch, StringArray, StringBuilder, StructBuilder,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use divan::counter::{BytesCount, ItemsCount};
use sha2::{Digest, Sha256};
use sink::{ArchiveWriter, WriterOptions};

const ROWS: usize = 20_000;
const BATCH_ROWS: usize = 1_000;

fn main() {
    report_streaming_memory();
    report_output_size();
    divan::main();
}

/// Streams 200,000 rows (about 1 GB of Arrow data, 7 partitions) through a writer with
/// a 64 MiB budget (or `SINK_BENCH_BUDGET_MIB`), committing whenever it asks, and prints
/// the rate and the process's peak resident memory (input generation included).
fn report_streaming_memory() {
    const STREAM_BATCHES: usize = 200;
    let budget_mib: usize = std::env::var("SINK_BENCH_BUDGET_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let rt = runtime();
    let (_dir, mut writer) = open_writer(
        &rt,
        WriterOptions {
            memory_budget_bytes: budget_mib * 1024 * 1024,
            ..options()
        },
    );
    let started = std::time::Instant::now();
    let (mut arrow_bytes, mut files, mut commits) = (0, 0, 0);
    for b in 0..STREAM_BATCHES {
        let input = batch(b);
        arrow_bytes += input.get_array_memory_size();
        writer.append("chat_messages", &input).unwrap();
        if writer.needs_commit() {
            files += rt.block_on(writer.commit(Vec::new())).unwrap().files.len();
            commits += 1;
        }
    }
    files += rt.block_on(writer.commit(Vec::new())).unwrap().files.len();
    let elapsed = started.elapsed().as_secs_f64();
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!(
        "streaming: {} rows, {:.0} MB Arrow in {elapsed:.1}s ({:.0} rows/s, {:.0} MB/s, generation included), {commits} commits, {files} files, {budget_mib} MiB budget, peak RSS {peak}",
        STREAM_BATCHES * BATCH_ROWS,
        arrow_bytes as f64 / 1e6,
        (STREAM_BATCHES * BATCH_ROWS) as f64 / elapsed,
        arrow_bytes as f64 / 1e6 / elapsed,
    );
}

/// Prints the size of what one commit of the input writes, for the compression ratio.
fn report_output_size() {
    let input = batches();
    let arrow_bytes: usize = input.iter().map(|b| b.get_array_memory_size()).sum();
    let rt = runtime();
    let (_dir, mut writer) = open_writer(&rt, options());
    append_all(&mut writer, &input);
    let report = rt.block_on(writer.commit(Vec::new())).unwrap();
    println!(
        "{ROWS} rows, {:.1} MB of Arrow data -> {} files, {:.1} MB of Parquet ({:.1}x smaller)",
        arrow_bytes as f64 / 1e6,
        report.files.len(),
        report.bytes as f64 / 1e6,
        arrow_bytes as f64 / report.bytes as f64
    );
}

const WORDS: &[&str] = &[
    "meeting", "deploy", "review", "customer", "invoice", "sprint", "release", "approved",
    "thanks", "please", "schedule", "budget", "contract", "draft", "final", "team", "update",
    "tomorrow", "urgent", "call", "lunch", "report", "numbers", "quarter", "risk", "legal",
];

fn mention_fields() -> Fields {
    Fields::from(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("mention_text", DataType::Utf8, true),
        Field::new("user_id", DataType::Utf8, true),
        Field::new("user_display_name", DataType::Utf8, true),
    ])
}

fn schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        text("chat_id"),
        text("team_id"),
        text("channel_id"),
        text("reply_to_id"),
        text("message_type"),
        Field::new("created_date_time", ts(), true),
        Field::new("last_modified_date_time", ts(), true),
        Field::new("deleted_date_time", ts(), true),
        text("subject"),
        text("importance"),
        text("body_content_type"),
        text("body_content"),
        text("body_text"),
        text("from_user_id"),
        text("from_user_display_name"),
        text("etag"),
        text("web_url"),
        Field::new(
            "mentions",
            DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(mention_fields()),
                true,
            ))),
            true,
        ),
        text("raw_json"),
        Field::new("content_sha256", DataType::Utf8, false),
        text("source"),
        Field::new("fetched_at", ts(), true),
        text("run_id"),
        Field::new("date", DataType::Date32, false),
    ]))
}

fn spec() -> TableSpec {
    TableSpec {
        name: "chat_messages",
        schema: schema(),
        partition_column: "date",
        key_columns: &["content_sha256"],
        key_day_column: Some("created_date_time"),
        order_columns: &[],
        statistics_columns: &[],
    }
}

fn batches() -> Vec<RecordBatch> {
    (0..ROWS / BATCH_ROWS).map(batch).collect()
}

/// Batch `b` of deterministic message-like rows: text from a vocabulary picked by a
/// hash chain, so it compresses like prose rather than like repeats.
fn batch(b: usize) -> RecordBatch {
    let base_us = 1_714_521_600_000_000i64;
    {
        {
            let rows: Vec<usize> = (b * BATCH_ROWS..(b + 1) * BATCH_ROWS).collect();
            let sentence = |i: usize, words: usize| {
                let mut h = Sha256::digest(i.to_le_bytes());
                let mut text = String::new();
                for w in 0..words {
                    if w % 32 == 31 {
                        h = Sha256::digest(h);
                    }
                    text.push_str(WORDS[h[w % 32] as usize % WORDS.len()]);
                    text.push(' ');
                }
                text
            };
            let bodies: Vec<String> = rows
                .iter()
                .map(|&i| format!("<p>{}</p>", sentence(i, 120)))
                .collect();
            let texts: Vec<String> = rows.iter().map(|&i| sentence(i, 120)).collect();
            let created: Vec<i64> = rows
                .iter()
                .map(|&i| base_us + (i as i64 % 7) * 86_400_000_000 + i as i64 * 1_000)
                .collect();
            let raw: Vec<String> = rows
                .iter()
                .zip(&bodies)
                .map(|(&i, body)| {
                    format!(
                        r#"{{"id":"{i}","replyToId":null,"etag":"{i}","messageType":"message","createdDateTime":"{c}","lastModifiedDateTime":"{c}","chatId":"19:{chat}@thread.v2","from":{{"user":{{"id":"{user}","displayName":"User {user}"}}}},"body":{{"contentType":"html","content":"{body}"}},"attachments":[],"mentions":[],"reactions":[],"extra":"{pad}"}}"#,
                        c = created[i - b * BATCH_ROWS],
                        chat = i % 97,
                        user = i % 389,
                        pad = sentence(i + 1_000_000, 200),
                    )
                })
                .collect();
            let sha: Vec<String> = raw.iter().map(|r| hex::encode(Sha256::digest(r))).collect();
            let mut mentions = ListBuilder::new(StructBuilder::from_fields(mention_fields(), 0));
            for &i in &rows {
                if i % 3 == 0 {
                    let m = mentions.values();
                    m.field_builder::<arrow::array::Int64Builder>(0)
                        .unwrap()
                        .append_value(0);
                    m.field_builder::<StringBuilder>(1)
                        .unwrap()
                        .append_value(format!("User {}", i % 389));
                    m.field_builder::<StringBuilder>(2)
                        .unwrap()
                        .append_value(format!("{}", i % 389));
                    m.field_builder::<StringBuilder>(3)
                        .unwrap()
                        .append_value(format!("User {}", i % 389));
                    m.append(true);
                }
                mentions.append(true);
            }
            let strings = |f: &dyn Fn(usize) -> Option<String>| -> ArrayRef {
                Arc::new(StringArray::from(
                    rows.iter().map(|&i| f(i)).collect::<Vec<_>>(),
                ))
            };
            let times = |values: Vec<Option<i64>>| -> ArrayRef {
                Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC"))
            };
            let columns: Vec<ArrayRef> = vec![
                strings(&|i| Some(i.to_string())),
                strings(&|i| Some(format!("19:{}@thread.v2", i % 97))),
                strings(&|_| None),
                strings(&|_| None),
                strings(&|_| None),
                strings(&|_| Some("message".into())),
                times(created.iter().map(|&c| Some(c)).collect()),
                times(created.iter().map(|&c| Some(c + 5_000)).collect()),
                times(vec![None; rows.len()]),
                strings(&|_| None),
                strings(&|_| Some("normal".into())),
                strings(&|_| Some("html".into())),
                Arc::new(StringArray::from_iter_values(&bodies)),
                Arc::new(StringArray::from_iter_values(&texts)),
                strings(&|i| Some(format!("{}", i % 389))),
                strings(&|i| Some(format!("User {}", i % 389))),
                strings(&|i| Some(i.to_string())),
                strings(&|i| {
                    Some(format!(
                        "https://teams.microsoft.com/l/message/19:{}/{i}",
                        i % 97
                    ))
                }),
                Arc::new(mentions.finish()),
                Arc::new(StringArray::from_iter_values(&raw)),
                Arc::new(StringArray::from_iter_values(&sha)),
                strings(&|_| Some("chats_getAllMessages".into())),
                times(vec![Some(base_us + 30 * 86_400_000_000); rows.len()]),
                strings(&|_| Some("bench".into())),
                Arc::new(Date32Array::from_iter_values(
                    created.iter().map(|c| c.div_euclid(86_400_000_000) as i32),
                )),
            ];
            RecordBatch::try_new(schema(), columns).unwrap()
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A writer of the message table into a fresh archive and state folder, kept with the
/// temporary folder that holds them (dropping it removes both).
fn open_writer(
    rt: &tokio::runtime::Runtime,
    options: WriterOptions,
) -> (tempfile::TempDir, ArchiveWriter) {
    let dir = tempfile::tempdir().unwrap();
    let writer = rt
        .block_on(ArchiveWriter::open(
            dir.path().join("out").to_str().unwrap(),
            dir.path().join("state").to_str().unwrap(),
            vec![spec()],
            options,
        ))
        .unwrap()
        .0;
    (dir, writer)
}

fn append_all(writer: &mut ArchiveWriter, input: &[RecordBatch]) {
    for batch in input {
        writer.append("chat_messages", batch).unwrap();
    }
}

/// The bencher, counting `input`'s rows and the Arrow memory of its batches.
fn counting<'a, 'b>(
    bencher: divan::Bencher<'a, 'b>,
    input: &[RecordBatch],
) -> divan::Bencher<'a, 'b> {
    let bytes: usize = input.iter().map(|b| b.get_array_memory_size()).sum();
    bencher
        .counter(ItemsCount::new(ROWS))
        .counter(BytesCount::new(bytes))
}

fn options() -> WriterOptions {
    WriterOptions {
        memory_budget_bytes: 512 * 1024 * 1024,
        run_id: "bench".into(),
        ..Default::default()
    }
}

/// Appending (version index lookups, partition split) and committing (encode, write,
/// fsync, index) all rows, into a fresh archive each time.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn append_and_commit(bencher: divan::Bencher) {
    let input = batches();
    let rt = runtime();
    counting(bencher, &input)
        .with_inputs(|| open_writer(&rt, options()))
        .bench_local_values(|(dir, mut writer)| {
            append_all(&mut writer, &input);
            let report = rt.block_on(writer.commit(Vec::new())).unwrap();
            assert_eq!(report.rows as usize, ROWS);
            (dir, report.bytes)
        });
}

/// Committing only: the rows are appended beforehand.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn commit(bencher: divan::Bencher) {
    let input = batches();
    let rt = runtime();
    counting(bencher, &input)
        .with_inputs(|| {
            let (dir, mut writer) = open_writer(&rt, options());
            append_all(&mut writer, &input);
            (dir, writer)
        })
        .bench_local_values(|(dir, mut writer)| {
            let report = rt.block_on(writer.commit(Vec::new())).unwrap();
            (dir, report.bytes)
        });
}
