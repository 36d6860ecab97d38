//! Shared pieces of the sink's integration tests: a message-like table, batches of it,
//! and the real services the tests drive (moto's S3 server, a Python with DuckDB).

#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use archive::TableSpec;
use arrow::array::{
    ArrayRef, Date32Array, ListBuilder, RecordBatch, StringArray, StringBuilder, StructBuilder,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sha2::{Digest, Sha256};
use sink::Location;

pub const TABLE: &str = "chat_messages";

fn mention_fields() -> Fields {
    Fields::from(vec![
        Field::new("user_id", DataType::Utf8, true),
        Field::new("display_name", DataType::Utf8, true),
    ])
}

/// A table shaped like the archive's messages: a key, timestamps, text, lists.
pub fn message_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new(
            "created_date_time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("body_content", DataType::Utf8, true),
        Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
        Field::new(
            "mentions",
            DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(mention_fields()),
                true,
            ))),
            true,
        ),
        Field::new("content_sha256", DataType::Utf8, false),
        Field::new("date", DataType::Date32, false),
    ]))
}

pub fn message_spec() -> TableSpec {
    TableSpec {
        name: TABLE,
        schema: message_schema(),
        partition_column: "date",
        key_columns: &["content_sha256"],
        key_day_column: Some("created_date_time"),
        order_columns: &[],
        statistics_columns: &[],
    }
}

/// One message version of the test table.
#[derive(Clone, Debug)]
pub struct Message {
    pub id: String,
    /// Microseconds since the epoch; the partition is its UTC day.
    pub created_us: i64,
    pub body: String,
}

impl Message {
    pub fn new(id: impl Into<String>, created_us: i64, body: impl Into<String>) -> Self {
        Message {
            id: id.into(),
            created_us,
            body: body.into(),
        }
    }

    /// The version key: SHA-256 of the content, hex.
    pub fn sha(&self) -> String {
        hex::encode(Sha256::digest(
            format!("{}|{}|{}", self.id, self.created_us, self.body).as_bytes(),
        ))
    }

    pub fn day(&self) -> i32 {
        self.created_us.div_euclid(86_400_000_000) as i32
    }
}

/// `n` messages spread over `days` days from 2024-05-01, bodies of `body_len` bytes.
pub fn messages(prefix: &str, n: usize, days: usize, body_len: usize) -> Vec<Message> {
    let base_us = 1_714_521_600_000_000i64; // 2024-05-01T00:00:00Z
    (0..n)
        .map(|i| {
            let day = (i % days.max(1)) as i64;
            let created = base_us + day * 86_400_000_000 + (i as i64) * 1_000_123 % 86_400_000_000;
            let mut body = format!("<p>{prefix} message {i}</p>");
            while body.len() < body_len {
                body.push_str(" lorem ipsum dolor sit amet");
            }
            body.truncate(body_len.max(8));
            Message::new(format!("{prefix}-{i}"), created, body)
        })
        .collect()
}

pub fn batch(messages: &[Message]) -> RecordBatch {
    let mut tags = ListBuilder::new(StringBuilder::new());
    let mut mentions = ListBuilder::new(StructBuilder::from_fields(mention_fields(), 0));
    // Every value derives from the message alone, so a row is the same in any batch.
    for message in messages {
        let n = message.id.len() + message.body.len();
        tags.values().append_value("a");
        if n % 2 == 0 {
            tags.values().append_value("b");
        }
        tags.append(true);
        let people = mentions.values();
        people
            .field_builder::<StringBuilder>(0)
            .unwrap()
            .append_value(format!("u{}", message.id));
        people
            .field_builder::<StringBuilder>(1)
            .unwrap()
            .append_value(format!("User {}", message.id));
        people.append(true);
        mentions.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            messages.iter().map(|m| m.id.as_str()),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(messages.iter().map(|m| m.created_us))
                .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter_values(
            messages.iter().map(|m| m.body.as_str()),
        )),
        Arc::new(tags.finish()),
        Arc::new(mentions.finish()),
        Arc::new(StringArray::from_iter_values(
            messages.iter().map(|m| m.sha()),
        )),
        Arc::new(Date32Array::from_iter_values(
            messages.iter().map(|m| m.day()),
        )),
    ];
    RecordBatch::try_new(message_schema(), columns).unwrap()
}

/// The Python of scripts/test.sh's virtualenv (moto, boto3, DuckDB, pyarrow).
pub fn python() -> String {
    std::env::var("TEAMS_ARCHIVER_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("TEAMS_ARCHIVER_TEST_PYTHON is not set: run scripts/test.sh (or eval \"$(scripts/dev-env.sh)\")")
    })
}

/// moto's S3 server started by scripts/test.sh.
pub fn s3_endpoint() -> String {
    std::env::var("TEAMS_ARCHIVER_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("TEAMS_ARCHIVER_TEST_S3_ENDPOINT is not set: run scripts/test.sh (or eval \"$(scripts/dev-env.sh)\")")
    })
}

/// Runs `script` with the test Python and returns its stdout; fails the test on error.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let output = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run the test Python");
    assert!(
        output.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Settings for moto, as `AWS_*` variables.
pub fn s3_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", s3_endpoint()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

/// Opens an `s3://` location on moto with explicit settings.
pub fn s3_location(url: &str) -> Location {
    let options: Vec<(String, String)> = s3_env()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    Location::parse_with_options(url, options).unwrap()
}

const BOTO: &str = r#"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="testing",
                  aws_secret_access_key="testing", region_name="us-east-1")
"#;

/// Creates a new bucket on moto; with `object_lock`, Object Lock is on with a default
/// retention (governance, 1 day).
pub fn fresh_bucket(label: &str, object_lock: bool) -> String {
    let name = format!(
        "{label}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_000
    );
    let script = format!(
        "{BOTO}
lock = sys.argv[3] == '1'
s3.create_bucket(Bucket=sys.argv[2], ObjectLockEnabledForBucket=lock)
if lock:
    s3.put_object_lock_configuration(Bucket=sys.argv[2], ObjectLockConfiguration={{
        'ObjectLockEnabled': 'Enabled',
        'Rule': {{'DefaultRetention': {{'Mode': 'GOVERNANCE', 'Days': 1}}}}}})
"
    );
    run_python(
        &script,
        &[&s3_endpoint(), &name, if object_lock { "1" } else { "0" }],
    );
    name
}

/// Every object version and delete marker in a bucket: (key, versions, delete markers).
pub fn bucket_versions(bucket: &str) -> Vec<(String, usize, usize)> {
    let script = format!(
        "{BOTO}
import collections, json
versions = collections.Counter(); markers = collections.Counter()
for page in s3.get_paginator('list_object_versions').paginate(Bucket=sys.argv[2]):
    for v in page.get('Versions', []): versions[v['Key']] += 1
    for m in page.get('DeleteMarkers', []): markers[m['Key']] += 1
keys = sorted(set(versions) | set(markers))
print(json.dumps([[k, versions[k], markers[k]] for k in keys]))
"
    );
    let out = run_python(&script, &[&s3_endpoint(), bucket]);
    serde_json::from_str(&out).unwrap()
}

/// Parquet files under `dir/table`, sorted.
pub fn parquet_files(dir: &Path, table: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.join(table)];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// All rows of a Parquet file.
pub fn read_parquet(
    bytes: bytes::Bytes,
) -> (Vec<RecordBatch>, parquet::file::metadata::ParquetMetaData) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
    let metadata = builder.metadata().as_ref().clone();
    let batches = builder
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (batches, metadata)
}

/// The `content_sha256` values of a batch.
pub fn shas(batch: &RecordBatch) -> Vec<String> {
    use arrow::array::AsArray;
    let column = batch
        .column_by_name("content_sha256")
        .unwrap()
        .as_string::<i32>();
    column.iter().map(|v| v.unwrap().to_string()).collect()
}

/// Each row's place in the version index, as the sink documents its keys: the UTC day of
/// `created_date_time` (sign bit flipped, big-endian), then SHA-256 of the key value as a
/// big-endian `u32` length and its bytes. A table without order columns writes its rows
/// in this order.
pub fn index_order(batch: &RecordBatch) -> Vec<Vec<u8>> {
    use arrow::array::AsArray;
    use arrow::datatypes::TimestampMicrosecondType;
    use sha2::{Digest, Sha256};
    let created = batch
        .column_by_name("created_date_time")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    shas(batch)
        .iter()
        .enumerate()
        .map(|(row, sha)| {
            let day = created.value(row).div_euclid(86_400_000_000) as i32;
            let mut key = ((day as u32) ^ 0x8000_0000).to_be_bytes().to_vec();
            let mut digest = Sha256::new();
            digest.update((sha.len() as u32).to_be_bytes());
            digest.update(sha.as_bytes());
            key.extend_from_slice(&digest.finalize());
            key
        })
        .collect()
}

/// A temporary folder holding a local archive (`out`) and its writer's state (`state`);
/// both go when the folder is dropped.
pub fn local_dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (archive, state) = (dir.path().join("out"), dir.path().join("state"));
    (dir, archive, state)
}

/// A writer of the message table into a local archive.
pub async fn open_local(
    archive: &Path,
    state: &Path,
    options: sink::WriterOptions,
) -> sink::ArchiveWriter {
    sink::ArchiveWriter::open(
        archive.to_str().unwrap(),
        state.to_str().unwrap(),
        vec![message_spec()],
        options,
    )
    .await
    .unwrap()
    .0
}

/// Every key below `location`, sorted.
pub async fn keys(location: &Location) -> Vec<String> {
    use futures::TryStreamExt;
    let mut keys: Vec<String> = location
        .store()
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    keys
}
