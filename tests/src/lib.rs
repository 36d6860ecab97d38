//! End-to-end tests of the `teams-archiver` program against the Graph simulator, local
//! disk, moto's S3 server, DuckDB and Spark. This library holds what the tests share:
//! where the real tools are, and how to drive them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// The Microsoft Graph docs response bodies kept in tests/fixtures/graph-docs.
pub fn graph_docs_fixtures() -> PathBuf {
    repo_root().join("tests/fixtures/graph-docs")
}

fn required_env(name: &str, what: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: this test needs {what}. Run it through scripts/test.sh \
             (or `eval \"$(scripts/dev-env.sh)\"` first)."
        )
    })
}

/// The virtualenv's python, with duckdb, pyarrow, pyspark and boto3.
pub fn python() -> PathBuf {
    PathBuf::from(required_env(
        "TEAMS_ARCHIVER_TEST_PYTHON",
        "a Python with duckdb, pyarrow, pyspark and boto3",
    ))
}

/// moto's S3 endpoint, e.g. http://127.0.0.1:5000.
pub fn s3_endpoint() -> String {
    required_env("TEAMS_ARCHIVER_TEST_S3_ENDPOINT", "moto's S3 server")
}

/// Runs a Python program with the test virtualenv; panics with its output if it fails.
pub fn run_python(program: &str, args: &[&str]) -> String {
    let output = Command::new(python())
        .arg("-c")
        .arg(program)
        .args(args)
        .output()
        .expect("python starts");
    assert_success("python", &output);
    String::from_utf8(output.stdout).expect("python prints UTF-8")
}

/// The archiver binary (`env!("CARGO_BIN_EXE_archiver")` in a test) as the tests run it:
/// no progress bars, only warnings and errors logged.
pub fn quiet_archiver(exe: &str) -> Command {
    let mut command = Command::new(exe);
    command.arg("--no-progress").env("RUST_LOG", "warn");
    command
}

/// All a program printed, stdout then stderr, for assertions and their messages.
pub fn output_text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed with {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Environment for the archiver to reach moto: credentials of any value, the endpoint,
/// plain HTTP.
pub fn s3_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL", s3_endpoint()),
        ("AWS_ALLOW_HTTP", "true".into()),
    ]
}

/// Creates a bucket on moto with a unique name and returns the name. With
/// `object_lock`, the bucket has Object Lock on and a default retention, so any
/// overwrite or delete of a written object would fail.
pub fn create_bucket(prefix: &str, object_lock: bool) -> String {
    let name = format!(
        "{}-{}",
        prefix,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let program = r#"
import sys, boto3
endpoint, name, lock = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
if lock:
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}})
else:
    s3.create_bucket(Bucket=name)
"#;
    run_python(
        program,
        &[&s3_endpoint(), &name, if object_lock { "1" } else { "0" }],
    );
    name
}

/// Copies every object of an S3 bucket prefix to a local folder (DuckDB and Spark here
/// cannot read s3:// themselves).
pub fn download_bucket(bucket: &str, prefix: &str, to: &Path) {
    let program = r#"
import os, sys, boto3
endpoint, bucket, prefix, to = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    for obj in page.get("Contents", []):
        rel = obj["Key"][len(prefix):].lstrip("/")
        path = os.path.join(to, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        s3.download_file(bucket, obj["Key"], path)
"#;
    run_python(
        program,
        &[
            &s3_endpoint(),
            bucket,
            prefix,
            to.to_str().expect("UTF-8 path"),
        ],
    );
}

/// Runs SQL in DuckDB and returns the rows as JSON values (one array per row).
pub fn duckdb_query(sql: &str) -> Vec<serde_json::Value> {
    let program = r#"
import json, sys, duckdb
con = duckdb.connect()
rows = con.execute(sys.argv[1]).fetchall()
print(json.dumps([list(r) for r in rows], default=str))
"#;
    let out = run_python(program, &[sql]);
    serde_json::from_str(out.trim()).expect("DuckDB rows as JSON")
}

/// Every file below `dir`, at any depth, sorted; none when `dir` does not exist.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Copies a folder and everything in it (an archive to tamper with).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

pub mod parquet_files;
pub mod tenant;

/// The run summaries of a local archive, oldest first, read as the archiver's own type.
pub fn run_summaries(out: &Path) -> Vec<archive::records::RunSummary> {
    use archive::records::Record;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(out.join(archive::layout::RUNS_DIR))
        .expect("the archive has run summaries")
        .map(|e| e.expect("a readable folder").path())
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            archive::records::RunSummary::from_json(&std::fs::read(path).expect("readable"))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect()
}
