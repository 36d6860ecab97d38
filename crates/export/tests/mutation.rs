//! Damaged archives: bytes of real archive files and records flipped, cut or overwritten,
//! thousands of times, and after each change `verify`, an export and a rebuild of the
//! version index from the archive. None of them may panic; `verify` must name every
//! changed data file; the export must list it; the rebuild must open.
//!
//! Seeded and replayable: `TEAMS_ARCHIVER_MUTATION_SEED` (default 1) picks the changes,
//! `TEAMS_ARCHIVER_MUTATION_CASES` (default 2000) how many, and
//! `TEAMS_ARCHIVER_MUTATION_SECONDS` (default 300) bounds the time spent, for CI. A failure
//! prints the seed and case number to replay it.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use archive::records::{Command, CommitRecord, Record, RunSummary};
use common::*;
use export::{ExportRequest, Format, Selection};
use serde_json::json;

/// A small, fast random generator (SplitMix64): the same seed, the same changes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
        Err(_) => default,
    }
}

/// An archive with chats over three days, custodians, users, chats, and a run summary.
fn archive(dir: &Path) {
    let mut input = ArchiveInput::default();
    for i in 0..30 {
        let item = chat_message(
            "19:c@thread.v2",
            &format!("{}", 1000 + i),
            Some(("u1", "Ada")),
            &format!("2024-05-0{}T09:00:00.000Z", 1 + i % 3),
            &format!("message {i} about the invoice"),
            json!({"reactions": [reaction("like", "u2", "2024-05-01T10:00:00.000Z")]}),
        );
        input.messages.push((item, vec!["u1".into(), "u2".into()]));
    }
    input.users.push(user("u1", "Ada", "ada@contoso.com"));
    input.users.push(user("u2", "Lin", "lin@contoso.com"));
    input.chats.push(
        json!({"id": "19:c@thread.v2", "topic": "Deal", "chatType": "group",
            "createdDateTime": "2024-05-01T00:00:00Z", "lastUpdatedDateTime": "2024-05-01T00:00:00Z",
            "members": []})
        .to_string(),
    );
    write_archive(dir, &input);
    // A run summary listing the files, as `sync` and `ingest` leave one, chained after
    // the last commit record.
    let commits: Vec<(CommitRecord, Vec<u8>)> = targets(dir)
        .iter()
        .filter(|p| p.starts_with(dir.join("_archive/commits")))
        .map(|p| {
            let bytes = std::fs::read(p).unwrap();
            (CommitRecord::from_json(&bytes).unwrap(), bytes)
        })
        .collect();
    let mut summary = RunSummary::new("test-run", Command::Ingest, chrono::Utc::now());
    for (commit, _) in &commits {
        summary.totals.add_files(&commit.files);
    }
    let (last, bytes) = commits
        .iter()
        .max_by_key(|(c, _)| c.chain.as_ref().map(|l| l.sequence))
        .expect("a commit");
    let link = last.chain.clone().expect("chained");
    summary.chain = Some(archive::records::ChainLink {
        writer: link.writer,
        sequence: link.sequence + 1,
        previous_sha256: Some(archive::records::record_sha256(bytes)),
    });
    std::fs::create_dir_all(dir.join("_archive/runs")).unwrap();
    std::fs::write(dir.join("_archive/runs/test-run.json"), summary.to_json()).unwrap();
}

/// Every data file and record of the archive (not the writer's own state).
fn targets(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("_state") {
                    stack.push(path);
                }
            } else if path
                .extension()
                .is_some_and(|e| e == "parquet" || e == "json")
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Changes `bytes` one of several ways; returns what it did.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) -> String {
    let len = bytes.len();
    match rng.below(6) {
        0 | 1 => {
            // Flip bits of a few bytes, anywhere.
            let n = 1 + rng.below(4);
            for _ in 0..n {
                let at = rng.below(len);
                bytes[at] ^= 1 << rng.below(8);
            }
            format!("flipped {n} bytes")
        }
        2 => {
            // Damage the end: the Parquet footer and its length, or a record's close.
            let back = 1 + rng.below(len.min(64));
            let at = len - back;
            bytes[at] = rng.next() as u8;
            format!("set byte {back} from the end")
        }
        3 => {
            let keep = rng.below(len);
            bytes.truncate(keep);
            format!("cut to {keep} bytes")
        }
        4 => {
            let at = rng.below(len);
            let n = (1 + rng.below(256)).min(len - at);
            for b in &mut bytes[at..at + n] {
                *b = rng.next() as u8;
            }
            format!("overwrote {n} bytes at {at}")
        }
        _ => {
            // A large number where a length or count is: 0xff bytes.
            let at = rng.below(len);
            let n = (1 + rng.below(8)).min(len - at);
            bytes[at..at + n].fill(0xff);
            format!("set {n} bytes at {at} to 0xff")
        }
    }
}

/// Panics inside the Parquet decoder that the code under test caught and reported as
/// damage (counted here; printing each would bury the test's own output).
static DECODER_PANICS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn quiet_decoder_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_decoder = info.location().is_some_and(|l| {
            let file = l.file();
            file.contains("/parquet-") || file.contains("/arrow-") || file.contains("/thrift")
        });
        if in_decoder {
            DECODER_PANICS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else {
            default(info);
        }
    }));
}

#[test]
fn damaged_files_and_records_are_named_and_nothing_panics() {
    let seed = env_number("TEAMS_ARCHIVER_MUTATION_SEED", 1);
    let cases = env_number("TEAMS_ARCHIVER_MUTATION_CASES", 2000);
    let budget = Duration::from_secs(env_number("TEAMS_ARCHIVER_MUTATION_SECONDS", 300));
    quiet_decoder_panics();

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("archive");
    archive(&root);
    let archive_url = root.to_str().unwrap().to_string();
    let files = targets(&root);
    assert!(files.len() >= 10, "{files:?}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let clean = runtime
        .block_on(export::verify_archive(&archive_url, &Default::default()))
        .unwrap();
    assert!(clean.is_clean(), "{:?}", clean.problems);

    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut done = 0u64;
    let (mut named_unreadable, mut index_warnings) = (0u64, 0u64);
    while done < cases && started.elapsed() < budget {
        let case = done;
        let target = &files[rng.below(files.len())];
        let relative = target
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let original = std::fs::read(target).unwrap();
        let mut bytes = original.clone();
        let change = mutate(&mut rng, &mut bytes);
        if bytes == original {
            done += 1;
            continue;
        }
        std::fs::write(target, &bytes).unwrap();
        let replay = format!(
            "replay with TEAMS_ARCHIVER_MUTATION_SEED={seed}: case {case}, {relative}: {change}"
        );
        let is_data = relative.ends_with(".parquet");

        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime.block_on(async {
                // verify: runs to the end and names a changed data file.
                let report = export::verify_archive(&archive_url, &Default::default())
                    .await
                    .unwrap_or_else(|e| panic!("verify failed to run ({e}); {replay}"));
                if is_data {
                    assert!(
                        report.problems.iter().any(|p| p.path == relative),
                        "verify did not name the changed file; {replay}: {:?}",
                        report.problems
                    );
                }
                let unreadable = report
                    .problems
                    .iter()
                    .any(|p| p.kind == export::ProblemKind::Unreadable);

                // export: runs to the end and lists the changed file as altered.
                let out = tempfile::tempdir().unwrap();
                let request = ExportRequest::new(
                    &archive_url,
                    &out.path().join("export"),
                    vec![Format::Jsonl],
                    Selection::default(),
                );
                match export::export(request).await {
                    Ok(exported) => {
                        if is_data {
                            assert!(
                                exported.altered_files.contains(&relative),
                                "the export did not name the changed file; {replay}"
                            );
                        }
                    }
                    Err(e) => panic!("the export stopped ({}); {replay}", e.chain()),
                }

                // The version index, rebuilt from the archive by a writer with new state.
                let state = tempfile::tempdir().unwrap();
                let options = sink::WriterOptions {
                    run_id: "mutation".into(),
                    ..sink::WriterOptions::default()
                };
                let (_, recovery) = sink::ArchiveWriter::open(
                    &archive_url,
                    state.path().to_str().unwrap(),
                    archive::Table::specs(),
                    options,
                )
                .await
                .unwrap_or_else(|e| panic!("the writer did not open ({e}); {replay}"));
                (unreadable, !recovery.warnings.is_empty())
            })
        }));
        std::fs::write(target, &original).unwrap();
        match outcome {
            Ok((unreadable, warned)) => {
                named_unreadable += u64::from(unreadable);
                index_warnings += u64::from(warned);
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("a panic escaped: {message}\n{replay}");
            }
        }
        done += 1;
    }
    eprintln!(
        "{done} damaged archives (seed {seed}, {:.0}s): verify named {named_unreadable} unreadable, the index rebuild warned {index_warnings} times, {} decoder panics caught",
        started.elapsed().as_secs_f64(),
        DECODER_PANICS.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(
        done >= cases.min(200),
        "too few cases ran in the time budget"
    );
    assert!(
        named_unreadable > 0 && index_warnings > 0,
        "damage was met and named"
    );
}

/// Every byte of a real file's footer (the Parquet metadata and its length) changed in
/// turn, each read back through the reader the archive's readers share: an error or
/// batches, never a panic. Cheap enough to try each position with several values.
#[test]
fn every_footer_byte_changed_is_an_error_or_data_never_a_panic() {
    use futures::TryStreamExt;
    use object_store::{ObjectStoreExt, PutPayload, memory::InMemory, path::Path as Key};
    quiet_decoder_panics();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("archive");
    archive(&root);
    let file = targets(&root)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .min_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let original = std::fs::read(&file).unwrap();
    let footer = u32::from_le_bytes(
        original[original.len() - 8..original.len() - 4]
            .try_into()
            .unwrap(),
    ) as usize
        + 8;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store: std::sync::Arc<dyn object_store::ObjectStore> = std::sync::Arc::new(InMemory::new());
    let key = Key::from("file.parquet");
    let (mut read, mut refused) = (0u64, 0u64);
    for at in original.len() - footer.min(original.len())..original.len() {
        for value in [0x00u8, 0xff, original[at] ^ 0x01, original[at] ^ 0x80] {
            if value == original[at] {
                continue;
            }
            let mut bytes = original.clone();
            bytes[at] = value;
            let size = bytes.len() as u64;
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                runtime.block_on(async {
                    store.put(&key, PutPayload::from(bytes)).await.unwrap();
                    let stream = sink::read_batches(
                        std::sync::Arc::clone(&store),
                        key.clone(),
                        size,
                        &["id", "raw_json", "content_sha256", "custodian_user_id"],
                        1024,
                    )
                    .await;
                    match stream {
                        Ok(stream) => stream.try_collect::<Vec<_>>().await.is_ok(),
                        Err(_) => false,
                    }
                })
            }));
            match outcome {
                Ok(true) => read += 1,
                Ok(false) => refused += 1,
                Err(_) => {
                    panic!("a panic escaped reading the file with byte {at} set to {value:#04x}")
                }
            }
        }
    }
    eprintln!(
        "{} footer changes: {read} read, {refused} refused, {} decoder panics caught",
        read + refused,
        DECODER_PANICS.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(refused > 0 && read + refused > 1000);
}
