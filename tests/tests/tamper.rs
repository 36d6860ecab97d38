//! Tampering by someone who can write the bucket: each case is done the way a careful
//! forger would (records rewritten to match, and the chain relinked where that is
//! possible), and `verify --expect-head`, given the head `sync` printed before, exits 4
//! and names what differs. Export refuses files no record lists.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use archive::records::{ChainLink, CommitRecord, Record, RunSummary, record_sha256};
use e2e::output_text;
use e2e::tenant::Tenant;
use graph_sim::SimConfig;

const ARCHIVER: &str = env!("CARGO_BIN_EXE_archiver");

/// An archive of two runs, and the head the second one printed.
struct Built {
    _dir: tempfile::TempDir,
    archive: PathBuf,
    head: String,
}

fn build() -> Built {
    let tenant = Tenant::start(SimConfig::small());
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let run = |tenant: &Tenant| {
        let output = tenant
            .sync(ARCHIVER, archive.to_str().unwrap())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", output_text(&output));
        output
    };
    run(&tenant);
    let room = tenant.sim.directory().chats[0].clone();
    tenant
        .sim
        .add_chat_message(&room.id, &room.member_ids[0], "<p>the second night</p>")
        .unwrap();
    let output = run(&tenant);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("chain "))
        .unwrap_or_else(|| panic!("sync prints its chain head:\n{stdout}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields.len(), 4, "{line}");
    let head = fields[3].to_string();
    assert_eq!(head.len(), 64, "{line}");

    let clean = verify(&archive, &[&head]);
    assert_eq!(clean.status.code(), Some(0), "{}", output_text(&clean));
    assert!(
        output_text(&clean).contains(&format!("{} {}", fields[1], fields[2])),
        "verify prints the same head:\n{}",
        output_text(&clean)
    );
    Built {
        _dir: dir,
        archive,
        head,
    }
}

fn verify(archive: &Path, heads: &[&str]) -> Output {
    let mut command = Command::new(ARCHIVER);
    command.arg("verify").arg("--archive").arg(archive);
    for head in heads {
        command.args(["--expect-head", head]);
    }
    command.output().unwrap()
}

/// A fresh copy of the archive to tamper with.
fn copy(built: &Built) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    e2e::copy_dir(&built.archive, &archive);
    (dir, archive)
}

enum Doc {
    Commit(CommitRecord),
    Run(RunSummary),
}

impl Doc {
    fn link(&mut self) -> &mut Option<ChainLink> {
        match self {
            Doc::Commit(c) => &mut c.chain,
            Doc::Run(r) => &mut r.chain,
        }
    }

    /// The files a record lists: a commit record's; a run summary lists none.
    fn files(&mut self) -> Option<&mut Vec<archive::records::FileRecord>> {
        match self {
            Doc::Commit(c) => Some(&mut c.files),
            Doc::Run(_) => None,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        match self {
            Doc::Commit(c) => c.to_json(),
            Doc::Run(r) => r.to_json(),
        }
    }
}

/// Every record with its path, in chain order.
fn records(archive: &Path) -> Vec<(PathBuf, Doc)> {
    let mut all = Vec::new();
    for (dir, commit) in [("_archive/commits", true), ("_archive/runs", false)] {
        for entry in std::fs::read_dir(archive.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let doc = if commit {
                Doc::Commit(CommitRecord::from_json(&bytes).unwrap())
            } else {
                Doc::Run(RunSummary::from_json(&bytes).unwrap())
            };
            all.push((path, doc));
        }
    }
    all.sort_by_key(|(_, doc)| {
        let mut doc_link = match doc {
            Doc::Commit(c) => c.chain.clone(),
            Doc::Run(r) => r.chain.clone(),
        };
        doc_link.take().map(|l| l.sequence).unwrap_or(0)
    });
    all
}

/// What a careful forger does last: number the records 1, 2, 3, ... again and link each
/// to the bytes of the one before, so that the chain itself holds.
fn relink(archive: &Path) {
    let mut previous: Option<String> = None;
    for (sequence, (path, mut doc)) in records(archive).into_iter().enumerate() {
        let link = doc.link().as_mut().expect("a chained record");
        link.sequence = sequence as u64 + 1;
        link.previous_sha256 = previous.clone();
        let bytes = doc.bytes();
        previous = Some(record_sha256(&bytes));
        std::fs::write(&path, bytes).unwrap();
    }
}

fn write(path: &Path, doc: &Doc) {
    std::fs::write(path, doc.bytes()).unwrap();
}

fn data_files(archive: &Path, table: &str) -> Vec<PathBuf> {
    e2e::parquet_files::table_files(archive, table)
}

fn key(archive: &Path, path: &Path) -> String {
    path.strip_prefix(archive).unwrap().display().to_string()
}

/// With the head printed before, the tampered archive fails verification, naming why.
fn assert_caught(archive: &Path, head: &str, names: &str) {
    let output = verify(archive, &[head]);
    assert_eq!(output.status.code(), Some(4), "{}", output_text(&output));
    assert!(
        output_text(&output).contains(names),
        "{}",
        output_text(&output)
    );
}

#[test]
fn every_kind_of_tampering_is_caught_with_the_head_printed_before() {
    let built = build();

    // 1. A file replaced, and every record of it rewritten to match.
    {
        let (_dir, archive) = copy(&built);
        let files = data_files(&archive, "chat_messages");
        let (victim, donor) = (&files[0], &files[1]);
        std::fs::copy(donor, victim).unwrap();
        let bytes = std::fs::read(victim).unwrap();
        let victim_key = key(&archive, victim);
        let donor_key = key(&archive, donor);
        let rows = records(&archive)
            .into_iter()
            .flat_map(|(_, mut d)| d.files().cloned().unwrap_or_default())
            .find(|f| f.path == donor_key)
            .unwrap()
            .rows;
        for (path, mut doc) in records(&archive) {
            for file in doc
                .files()
                .into_iter()
                .flatten()
                .filter(|f| f.path == victim_key)
            {
                file.sha256 = record_sha256(&bytes);
                file.bytes = bytes.len() as u64;
                file.rows = rows;
            }
            write(&path, &doc);
        }
        relink(&archive);
        assert_caught(&archive, &built.head, "unexpected head");
    }

    // 2. A commit removed with its files.
    {
        let (_dir, archive) = copy(&built);
        let (path, mut doc) = records(&archive)
            .into_iter()
            .find(|(_, d)| matches!(d, Doc::Commit(_)))
            .unwrap();
        let removed: Vec<String> = doc
            .files()
            .unwrap()
            .iter()
            .map(|f| f.path.clone())
            .collect();
        for file in &removed {
            std::fs::remove_file(archive.join(file)).unwrap();
        }
        std::fs::remove_file(path).unwrap();
        for (path, mut doc) in records(&archive) {
            if let Some(files) = doc.files() {
                files.retain(|f| !removed.contains(&f.path));
            }
            write(&path, &doc);
        }
        relink(&archive);
        assert_caught(&archive, &built.head, "unexpected head");
    }

    // 3. A forged file with a forged commit record, appended to the chain as a run would.
    {
        let (_dir, archive) = copy(&built);
        let donor = data_files(&archive, "chat_messages").remove(0);
        let forged = donor.with_file_name("part-forged.parquet");
        std::fs::copy(&donor, &forged).unwrap();
        let all = records(&archive);
        let (last_path, _) = all.last().unwrap();
        let last_bytes = std::fs::read(last_path).unwrap();
        let (_, mut last) = records(&archive).pop().unwrap();
        let last_link = last.link().clone().unwrap();
        let mut file = records(&archive)
            .into_iter()
            .flat_map(|(_, mut d)| d.files().cloned().unwrap_or_default())
            .find(|f| f.path == key(&archive, &donor))
            .unwrap();
        file.path = key(&archive, &forged);
        let record = CommitRecord::new(
            "forged-commit",
            "forged-run",
            false,
            vec![file],
            ChainLink {
                writer: last_link.writer.clone(),
                sequence: last_link.sequence + 1,
                previous_sha256: Some(record_sha256(&last_bytes)),
            },
        );
        std::fs::write(
            archive.join("_archive/commits/forged-commit.json"),
            record.to_json(),
        )
        .unwrap();
        // The chain holds; what follows the head is the tell.
        assert_caught(&archive, &built.head, "comes after the expected head");
        let older = Command::new(ARCHIVER)
            .args(["verify", "--archive"])
            .arg(&archive)
            .args(["--expect-head", &built.head, "--allow-later-records"])
            .output()
            .unwrap();
        assert_eq!(older.status.code(), Some(0), "{}", output_text(&older));
    }

    // 4. A run summary edited: first left as it is, then with the chain relinked.
    {
        let (_dir, archive) = copy(&built);
        let (path, mut doc) = records(&archive)
            .into_iter()
            .find(|(_, d)| matches!(d, Doc::Run(_)))
            .unwrap();
        if let Doc::Run(summary) = &mut doc {
            summary.errors.push("nothing to see here".into());
        }
        write(&path, &doc);
        assert_caught(&archive, &built.head, "broken chain");
        relink(&archive);
        assert_caught(&archive, &built.head, "unexpected head");
    }

    // 5. The chain cut short: the last run's records and files gone. What is left is
    // consistent, so only the head tells.
    {
        let (_dir, archive) = copy(&built);
        let all = records(&archive);
        let last_run = match &all.last().unwrap().1 {
            Doc::Run(r) => r.run_id.clone(),
            Doc::Commit(_) => panic!("a run ends with its summary"),
        };
        for (path, mut doc) in all {
            let run = match &doc {
                Doc::Commit(c) => c.run_id.clone(),
                Doc::Run(r) => r.run_id.clone(),
            };
            if run == last_run {
                for file in doc.files().into_iter().flatten() {
                    let _ = std::fs::remove_file(archive.join(&file.path));
                }
                std::fs::remove_file(path).unwrap();
            }
        }
        let quiet = verify(&archive, &[]);
        assert_eq!(quiet.status.code(), Some(0), "{}", output_text(&quiet));
        assert_caught(&archive, &built.head, "unexpected head");
    }
}

#[test]
fn export_refuses_files_no_record_lists_unless_asked() {
    let built = build();
    let (dir, archive) = copy(&built);
    let donor = data_files(&archive, "chat_messages").remove(0);
    let forged = donor.with_file_name("part-forged.parquet");
    std::fs::copy(&donor, &forged).unwrap();
    let forged_key = key(&archive, &forged);

    let export = |from: &Path, out: &str, extra: &[&str]| {
        Command::new(ARCHIVER)
            .args(["export", "--format", "jsonl", "--archive"])
            .arg(from)
            .arg("--out")
            .arg(dir.path().join(out))
            .args(extra)
            .output()
            .unwrap()
    };
    let refused = export(&archive, "refused", &[]);
    assert_eq!(refused.status.code(), Some(4), "{}", output_text(&refused));
    assert!(
        output_text(&refused).contains(&format!("not exported: {forged_key}")),
        "{}",
        output_text(&refused)
    );
    let allowed = export(&archive, "allowed", &["--allow-unrecorded"]);
    assert_eq!(allowed.status.code(), Some(0), "{}", output_text(&allowed));
    assert!(
        output_text(&allowed).contains(&forged_key),
        "{}",
        output_text(&allowed)
    );

    // The refused export holds exactly what the untouched archive exports.
    let untouched = export(&built.archive, "untouched", &[]);
    assert_eq!(
        untouched.status.code(),
        Some(0),
        "{}",
        output_text(&untouched)
    );
    let lines = |out: &str| -> Vec<String> {
        let mut all = Vec::new();
        for entry in walk(&dir.path().join(out)) {
            if entry.extension().is_some_and(|e| e == "jsonl") {
                all.extend(
                    std::fs::read_to_string(&entry)
                        .unwrap()
                        .lines()
                        .map(str::to_string),
                );
            }
        }
        all.sort();
        all
    };
    let (refused_lines, untouched_lines) = (lines("refused"), lines("untouched"));
    assert!(!untouched_lines.is_empty());
    assert_eq!(refused_lines.len(), untouched_lines.len());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(walk(&path));
            } else {
                found.push(path);
            }
        }
    }
    found
}
