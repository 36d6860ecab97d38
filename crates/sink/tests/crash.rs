//! Crash safety with a real process: `sink-crash-writer` archives a fixed input of
//! scopes and pages; it is killed with SIGKILL just before each step of the commit
//! protocol (and of recovery) and at random moments, then run again. After every kill
//! no version is in the archive twice and no checkpoint is ahead of its data; at the
//! end every version is there exactly once.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use object_store::ObjectStoreExt;
use rand::{Rng, SeedableRng};
use sink::{CheckpointStore, Location, ProtocolStep};

const HARNESS: &str = env!("CARGO_BIN_EXE_sink-crash-writer");

/// Kill points: (step, occurrence within one run). Occurrences after the first land
/// in the second commit of a run, or between files of one commit.
const PAUSE_POINTS: &[(ProtocolStep, usize)] = &[
    (ProtocolStep::WriteAhead, 1),
    (ProtocolStep::WriteFile, 1),
    (ProtocolStep::Recover, 1),
    (ProtocolStep::WriteFile, 3),
    (ProtocolStep::CommitRecord, 1),
    (ProtocolStep::Index, 1),
    (ProtocolStep::Checkpoints, 1),
    (ProtocolStep::ClearWriteAhead, 1),
    (ProtocolStep::Committed, 1),
    (ProtocolStep::WriteFile, 2),
    (ProtocolStep::Recover, 1),
    (ProtocolStep::CommitRecord, 2),
    (ProtocolStep::Index, 2),
    (ProtocolStep::Checkpoints, 2),
    (ProtocolStep::WriteAhead, 2),
    (ProtocolStep::ClearWriteAhead, 2),
];

/// Seeds the random kills: `TEAMS_ARCHIVER_CRASH_SEED` replays a failed run's seed.
fn crash_seed() -> u64 {
    match std::env::var("TEAMS_ARCHIVER_CRASH_SEED") {
        Ok(seed) => seed.parse().expect("TEAMS_ARCHIVER_CRASH_SEED is a number"),
        Err(_) => rand::rng().random(),
    }
}

#[derive(serde::Deserialize)]
struct Expected {
    /// scope -> pages -> message version keys
    messages: BTreeMap<String, Vec<Vec<String>>>,
    /// scope -> pages -> `custodian|sha`
    custodians: BTreeMap<String, Vec<Vec<String>>>,
}

struct Target {
    archive: String,
    state: String,
    index_dir: std::path::PathBuf,
    env: Vec<(&'static str, String)>,
    archive_location: Location,
    state_location: Location,
}

struct Run {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Target {
    fn spawn(&self, pause: Option<(ProtocolStep, usize)>) -> Run {
        let mut command = Command::new(HARNESS);
        command
            .args(["run", "--archive", &self.archive, "--state", &self.state])
            .arg("--index-dir")
            .arg(&self.index_dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some((step, n)) = pause {
            command.args(["--pause-at", &format!("{}:{n}", step.as_str())]);
        }
        let mut child = command.spawn().expect("start sink-crash-writer");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Run { child, lines }
    }
}

impl Run {
    /// Waits for a line starting with `prefix`; None if the process ended first.
    fn wait_for(&mut self, prefix: &str, seen: &mut Vec<String>) -> Option<String> {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(120)) {
                Ok(line) => {
                    seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return Some(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("sink-crash-writer hung: {seen:?}"),
            }
        }
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL"); // SIGKILL on Unix
        self.child.wait().unwrap();
    }
}

fn expected() -> Expected {
    let output = Command::new(HARNESS).arg("expected").output().unwrap();
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Every message key and custodian key in the archive's complete Parquet files.
async fn archive_keys(archive: &Location) -> (Vec<String>, Vec<String>) {
    let listed = keys(archive).await;
    let (mut messages, mut custodians) = (Vec::new(), Vec::new());
    for key in listed.iter().filter(|k| k.ends_with(".parquet")) {
        let bytes = archive
            .store()
            .get(&object_store::path::Path::parse(key).unwrap())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        for batch in read_parquet(bytes).0 {
            if key.starts_with("chat_messages/") {
                messages.extend(shas(&batch));
            } else if key.starts_with("chat_message_custodians/") {
                use arrow::array::AsArray;
                let who = batch
                    .column_by_name("custodian_user_id")
                    .unwrap()
                    .as_string::<i32>();
                for (custodian, sha) in who.iter().zip(shas(&batch)) {
                    custodians.push(format!("{}|{sha}", custodian.unwrap()));
                }
            } else {
                panic!("unexpected file {key}");
            }
        }
    }
    (messages, custodians)
}

/// On disk, whatever a `*.parquet` glob matches is a complete Parquet file: an upload
/// cut short is only ever a staging name (`<name>.parquet#<n>`).
fn check_local_files(dir: &std::path::Path, context: &str) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                let bytes = bytes::Bytes::from(std::fs::read(&path).unwrap());
                assert!(
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                        .is_ok(),
                    "{context}: {} matches *.parquet but is not a complete file",
                    path.display()
                );
            }
        }
    }
}

fn assert_once(keys: &[String], what: &str, context: &str) -> HashSet<String> {
    let set: HashSet<String> = keys.iter().cloned().collect();
    assert_eq!(
        set.len(),
        keys.len(),
        "{what}: a version is stored twice ({context})"
    );
    set
}

/// No version twice; every page before a scope's checkpoint fully in the archive.
/// Returns the number of pages the checkpoints cover.
async fn check(target: &Target, expected: &Expected, context: &str) -> usize {
    if let Some(dir) = target.archive_location.local_dir() {
        check_local_files(dir, context);
    }
    let (messages, custodians) = archive_keys(&target.archive_location).await;
    let messages = assert_once(&messages, "chat_messages", context);
    let custodians = assert_once(&custodians, "chat_message_custodians", context);
    let checkpoints = CheckpointStore::at(target.state_location.clone())
        .list()
        .await
        .unwrap();
    let mut covered = 0;
    for (scope, value) in checkpoints {
        let next_page = value["next_page"].as_u64().unwrap() as usize;
        covered += next_page;
        for page in 0..next_page {
            for key in &expected.messages[&scope][page] {
                assert!(
                    messages.contains(key),
                    "{context}: checkpoint of {scope} is at page {next_page} but message {key} of page {page} is not archived"
                );
            }
            for key in &expected.custodians[&scope][page] {
                assert!(
                    custodians.contains(key),
                    "{context}: checkpoint of {scope} is at page {next_page} but custodian row {key} of page {page} is not archived"
                );
            }
        }
    }
    covered
}

async fn crash_many_times(target: Target, random_kills: usize) {
    let expected = expected();
    let total_pages: usize = expected.messages.values().map(Vec::len).sum();
    let mut log = Vec::new();

    for &(step, occurrence) in PAUSE_POINTS {
        let mut run = target.spawn(Some((step, occurrence)));
        let paused = run.wait_for("PAUSED", &mut log);
        assert!(
            paused.is_some(),
            "the run ended before reaching {step:?}:{occurrence}; output: {log:?}"
        );
        run.kill();
        let covered = check(
            &target,
            &expected,
            &format!("after a kill before {step:?}:{occurrence}"),
        )
        .await;
        assert!(
            covered < total_pages,
            "the input ran out before the kills did"
        );
    }

    let seed = crash_seed();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for i in 0..random_kills {
        let delay = Duration::from_millis(rng.random_range(5..400));
        let run = target.spawn(None);
        std::thread::sleep(delay);
        run.kill();
        check(
            &target,
            &expected,
            &format!(
                "after random kill {i} at {delay:?} (replay with TEAMS_ARCHIVER_CRASH_SEED={seed})"
            ),
        )
        .await;
    }

    let mut run = target.spawn(None);
    assert!(
        run.wait_for("DONE", &mut log).is_some(),
        "the last run failed: {log:?}"
    );
    assert!(run.child.wait().unwrap().success());
    let covered = check(&target, &expected, "after the final run").await;
    assert_eq!(covered, total_pages, "every scope finished");

    let (messages, custodians) = archive_keys(&target.archive_location).await;
    let all_messages: HashSet<&String> = expected.messages.values().flatten().flatten().collect();
    let all_custodians: HashSet<&String> =
        expected.custodians.values().flatten().flatten().collect();
    assert_eq!(
        messages.len(),
        all_messages.len(),
        "every message version exactly once"
    );
    assert_eq!(
        custodians.len(),
        all_custodians.len(),
        "every custodian row exactly once"
    );

    // Recovery did both of its jobs at some point: commit written files, forget others.
    let recovered: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("OPENED recovered=Some"))
        .collect();
    assert!(
        recovered.iter().any(|l| !l.contains(" committed=0")),
        "{recovered:?}"
    );
    assert!(
        recovered.iter().any(|l| !l.ends_with(" forgotten=0")),
        "{recovered:?}"
    );
    assert!(
        target
            .state_location
            .store()
            .head(&object_store::path::Path::from("write-ahead.json"))
            .await
            .is_err(),
        "no commit is left half done"
    );
}

#[tokio::test]
async fn killed_at_every_step_on_local_disk_stores_each_version_once() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, state) = (dir.path().join("out"), dir.path().join("state"));
    let target = Target {
        archive: archive.display().to_string(),
        state: state.display().to_string(),
        index_dir: state.clone(),
        env: vec![],
        archive_location: Location::parse(archive.to_str().unwrap()).unwrap(),
        state_location: Location::parse(state.to_str().unwrap()).unwrap(),
    };
    crash_many_times(target, 12).await;
    // Interrupted uploads left nothing a directory reader would trip over.
    let mut stack = vec![archive];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                assert!(
                    name.ends_with(".parquet") || name.ends_with(".json"),
                    "{name}"
                );
            }
        }
    }
}

#[tokio::test]
async fn killed_at_every_step_on_s3_with_object_lock_stores_each_version_once() {
    let locked = fresh_bucket("sink-crash-lock", true);
    let plain = fresh_bucket("sink-crash-state", false);
    let index = tempfile::tempdir().unwrap();
    let (archive, state) = (
        format!("s3://{locked}/archive"),
        format!("s3://{plain}/state"),
    );
    let target = Target {
        archive_location: s3_location(&archive),
        state_location: s3_location(&state),
        archive,
        state,
        index_dir: index.path().to_path_buf(),
        env: s3_env(),
    };
    crash_many_times(target, 8).await;
    for (key, versions, markers) in bucket_versions(&locked) {
        assert_eq!(
            (versions, markers),
            (1, 0),
            "{key} was overwritten or deleted"
        );
    }
}
