//! Custody beyond the chain: records signed with an Ed25519 key (made by OpenSSL, kept
//! outside the archive) that `verify --verify-key` checks, and on S3 keys written twice,
//! which a versioned (Object Lock) bucket remembers and `verify` names.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use e2e::{graph_docs_fixtures, output_text, run_python};

fn archiver() -> Command {
    e2e::quiet_archiver(env!("CARGO_BIN_EXE_archiver"))
}

/// The archiver with `args`, then `key_flag <key>` when a key is given, in `env`.
fn run(
    args: &[&std::ffi::OsStr],
    key_flag: &str,
    key: Option<&Path>,
    env: &[(&str, String)],
) -> Output {
    let mut command = archiver();
    command.args(args);
    if let Some(key) = key {
        command.arg(key_flag).arg(key);
    }
    command
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("the archiver starts")
}

fn ingest(out: &str, signing_key: Option<&Path>, env: &[(&str, String)]) -> Output {
    let fixtures = graph_docs_fixtures().join("v1.0");
    let args = [
        "ingest".as_ref(),
        "--out".as_ref(),
        out.as_ref(),
        fixtures.as_os_str(),
    ];
    run(&args, "--signing-key", signing_key, env)
}

fn verify(archive: &str, verify_key: Option<&Path>, env: &[(&str, String)]) -> Output {
    let args = ["verify".as_ref(), "--archive".as_ref(), archive.as_ref()];
    run(&args, "--verify-key", verify_key, env)
}

/// A private and a public key in PEM, as an operator makes them with OpenSSL.
fn openssl_keys(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let made = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&private)
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{}", output_text(&made));
    let made = Command::new("openssl")
        .arg("pkey")
        .arg("-in")
        .arg(&private)
        .args(["-pubout", "-out"])
        .arg(&public)
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{}", output_text(&made));
    (private, public)
}

fn first_file(dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.into_iter().next().expect("a file")
}

/// Verification of a tampered copy exits 4 and names `what` about `path`.
fn assert_caught(archive: &Path, key: &Path, path: &str, what: &str) {
    let output = verify(archive.to_str().unwrap(), Some(key), &[]);
    assert_eq!(output.status.code(), Some(4), "{}", output_text(&output));
    let line = output_text(&output)
        .lines()
        .find(|l| l.contains(path) && l.starts_with("bad signature"))
        .map(str::to_string);
    assert!(
        line.as_deref().is_some_and(|l| l.contains(what)),
        "no `bad signature` line about {path} saying {what:?}:\n{}",
        output_text(&output)
    );
}

/// Verification of a copy of `archive` that `tamper` changed exits 4 and names `what`
/// about the file `tamper` returns.
fn assert_tampering_caught(
    archive: &Path,
    key: &Path,
    what: &str,
    tamper: impl FnOnce(&Path) -> PathBuf,
) {
    let copy = tempfile::tempdir().unwrap();
    e2e::copy_dir(archive, copy.path());
    let touched = tamper(copy.path());
    let name = touched.file_name().unwrap().to_str().unwrap();
    assert_caught(copy.path(), key, name, what);
}

#[test]
fn signed_records_verify_with_their_key_and_forgeries_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = openssl_keys(dir.path(), "archive");
    let (_, stranger) = openssl_keys(dir.path(), "stranger");
    let archive = dir.path().join("archive");
    let out = archive.to_str().unwrap();
    for _ in 0..2 {
        let output = ingest(out, Some(&private), &[]);
        assert_eq!(output.status.code(), Some(0), "{}", output_text(&output));
    }
    let signatures = |folder: &str| {
        std::fs::read_dir(archive.join("_archive/signatures").join(folder))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let records = |folder: &str| {
        std::fs::read_dir(archive.join("_archive").join(folder))
            .unwrap()
            .count()
    };
    assert_eq!(signatures("commits"), records("commits"));
    assert_eq!(signatures("runs"), 2);

    let clean = verify(out, Some(&public), &[]);
    assert_eq!(clean.status.code(), Some(0), "{}", output_text(&clean));
    assert!(
        output_text(&clean).contains(" 0 problems"),
        "{}",
        output_text(&clean)
    );

    let wrong = verify(out, Some(&stranger), &[]);
    assert_eq!(wrong.status.code(), Some(4), "{}", output_text(&wrong));
    assert!(
        output_text(&wrong).contains("not by the expected key"),
        "{}",
        output_text(&wrong)
    );

    // A run summary edited by someone without the key: its signature no longer holds.
    assert_tampering_caught(&archive, &public, "sha256", |copy| {
        let summary = first_file(&copy.join("_archive/runs"));
        let edited = String::from_utf8(std::fs::read(&summary).unwrap())
            .unwrap()
            .replacen("\"run_id\"", "\"run_id\" ", 1);
        std::fs::write(&summary, edited).unwrap();
        summary
    });
    // A signature removed: the record is reported unsigned.
    assert_tampering_caught(&archive, &public, "not signed", |copy| {
        let signature = first_file(&copy.join("_archive/signatures/commits"));
        std::fs::remove_file(&signature).unwrap();
        signature
    });
    // A record removed with its files still leaves its signature behind.
    assert_tampering_caught(&archive, &public, "not in the archive", |copy| {
        let record = first_file(&copy.join("_archive/commits"));
        std::fs::remove_file(&record).unwrap();
        record
    });
}

#[test]
fn an_unsigned_archive_fails_a_key_check_and_a_wrong_key_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = openssl_keys(dir.path(), "archive");
    let archive = dir.path().join("archive");
    let out = archive.to_str().unwrap();
    let output = ingest(out, None, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", output_text(&output));
    assert_eq!(verify(out, None, &[]).status.code(), Some(0));
    let checked = verify(out, Some(&public), &[]);
    assert_eq!(checked.status.code(), Some(4), "{}", output_text(&checked));
    assert!(
        output_text(&checked).contains("not signed"),
        "{}",
        output_text(&checked)
    );

    // A public key given where the private one belongs: named, and nothing written.
    let runs_before = std::fs::read_dir(archive.join("_archive/runs"))
        .unwrap()
        .count();
    let refused = ingest(out, Some(&public), &[]);
    assert_eq!(refused.status.code(), Some(1), "{}", output_text(&refused));
    assert!(
        output_text(&refused).contains("--signing-key"),
        "{}",
        output_text(&refused)
    );
    assert!(
        output_text(&refused).contains(public.to_str().unwrap()),
        "{}",
        output_text(&refused)
    );
    let runs_after = std::fs::read_dir(archive.join("_archive/runs"))
        .unwrap()
        .count();
    assert_eq!(runs_before, runs_after);
    // The private key file is not a public key either.
    let wrong = verify(out, Some(&private), &[]);
    assert_eq!(wrong.status.code(), Some(1), "{}", output_text(&wrong));
    assert!(
        output_text(&wrong).contains("--verify-key"),
        "{}",
        output_text(&wrong)
    );
}

/// Writes `bytes` to `key` of `bucket` (a new version where the bucket keeps versions).
fn put_object(bucket: &str, key: &str, bytes: &Path) {
    let program = r#"
import sys, boto3
endpoint, bucket, key, path = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
with open(path, "rb") as f:
    s3.put_object(Bucket=bucket, Key=key, Body=f.read())
"#;
    run_python(
        program,
        &[&e2e::s3_endpoint(), bucket, key, bytes.to_str().unwrap()],
    );
}

#[test]
fn on_s3_a_key_written_twice_is_named_even_with_the_same_bytes() {
    let env = e2e::s3_env();
    // Without versioning the bucket keeps one version per key: nothing to report.
    let plain = e2e::create_bucket("plain", false);
    let url = format!("s3://{plain}/archive");
    let output = ingest(&url, None, &env);
    assert_eq!(output.status.code(), Some(0), "{}", output_text(&output));
    let clean = verify(&url, None, &env);
    assert_eq!(clean.status.code(), Some(0), "{}", output_text(&clean));

    // An Object Lock bucket keeps every version: an overwrite is there to see.
    let locked = e2e::create_bucket("locked", true);
    let url = format!("s3://{locked}/archive");
    let output = ingest(&url, None, &env);
    assert_eq!(output.status.code(), Some(0), "{}", output_text(&output));
    let clean = verify(&url, None, &env);
    assert_eq!(clean.status.code(), Some(0), "{}", output_text(&clean));

    let local = tempfile::tempdir().unwrap();
    e2e::download_bucket(&locked, "archive", local.path());
    let file = e2e::parquet_files::table_files(local.path(), "chat_messages")
        .into_iter()
        .next()
        .expect("a chat_messages file");
    let relative = file
        .strip_prefix(local.path())
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    // The same bytes again: the file still hashes right, but it was written twice.
    put_object(&locked, &format!("archive/{relative}"), &file);
    let caught = verify(&url, None, &env);
    assert_eq!(caught.status.code(), Some(4), "{}", output_text(&caught));
    let line = output_text(&caught)
        .lines()
        .find(|l| l.starts_with("overwritten"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no overwritten line:\n{}", output_text(&caught)));
    assert!(line.contains(&relative), "{line}");
    assert!(line.contains("2 versions"), "{line}");
}
