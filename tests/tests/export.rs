//! `teams-archiver export` and `verify` end to end: archives built by `ingest` (the Graph
//! docs examples) and by `sync` against the simulator, exported in every format and
//! checked against the archived rows; RSMF envelopes parsed as MIME by Python's email
//! package and their manifests validated against Relativity's 2.0 schema; HTML rendered
//! by headless Chromium; a changed byte in an archive file and in an export file named
//! by `verify`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::output_text;
use e2e::tenant::{Tenant, small_tenant};
use graph_sim::Conversation;
use serde_json::Value;

const ARCHIVER: &str = env!("CARGO_BIN_EXE_archiver");

fn archiver() -> Command {
    e2e::quiet_archiver(ARCHIVER)
}

fn run(command: &mut Command, code: i32) -> String {
    let output = command.output().expect("the archiver starts");
    let all = output_text(&output);
    assert_eq!(output.status.code(), Some(code), "{all}");
    all
}

fn export(archive: &Path, out: &Path, args: &[&str]) -> String {
    run(
        archiver()
            .arg("export")
            .arg("--archive")
            .arg(archive)
            .arg("--out")
            .arg(out)
            .args(args),
        0,
    )
}

/// Export arguments: `--format` for each of `formats`, then `rest`.
fn with_formats<'a>(formats: &[&'a str], rest: &[&'a str]) -> Vec<&'a str> {
    let mut args: Vec<&str> = formats.iter().flat_map(|f| ["--format", f]).collect();
    args.extend_from_slice(rest);
    args
}

/// `verify` of an export against its archive, exiting with `code`: what it printed.
fn verify_export(archive: &Path, out: &Path, code: i32) -> String {
    run(
        archiver()
            .arg("verify")
            .arg("--archive")
            .arg(archive)
            .arg("--export")
            .arg(out),
        code,
    )
}

fn ingest_docs(out: &Path) {
    let dirs: Vec<PathBuf> = ["v1.0", "beta", "concepts"]
        .iter()
        .map(|d| e2e::graph_docs_fixtures().join(d))
        .collect();
    // The docs hold four change notifications, which are not messages: exit code 3.
    run(
        archiver().arg("ingest").arg("--out").arg(out).args(&dirs),
        3,
    );
}

/// Opens every `.rsmf` of an export with Python's email package, validates each
/// manifest against the RSMF 2.0 schema (formats checked) and returns, per file, its
/// headers, its zip entry names and its manifest.
const READ_RSMF: &str = r#"
import email, glob, io, json, os, sys, zipfile
from email import policy
from jsonschema import Draft7Validator, FormatChecker
schema_path, export = sys.argv[1], sys.argv[2]
validator = Draft7Validator(json.load(open(schema_path)), format_checker=FormatChecker())
out = {}
for path in sorted(glob.glob(os.path.join(export, "rsmf", "**", "*.rsmf"), recursive=True)):
    message = email.message_from_bytes(open(path, "rb").read(), policy=policy.default)
    attachments = list(message.iter_attachments())
    assert len(attachments) == 1 and attachments[0].get_filename() == "rsmf.zip", path
    archive = zipfile.ZipFile(io.BytesIO(attachments[0].get_content()))
    manifest = json.loads(archive.read("rsmf_manifest.json"))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(manifest)]
    out[os.path.relpath(path, export)] = {
        "headers": {k: str(v) for k, v in message.items()},
        "text": message.get_body(("plain",)).get_content(),
        "entries": archive.namelist(),
        "manifest": manifest,
        "schema_errors": errors,
    }
print(json.dumps(out))
"#;

fn read_rsmf(export: &Path) -> BTreeMap<String, Value> {
    let schema = e2e::repo_root().join("tests/fixtures/rsmf/rsmf_schema_2_0_0.json");
    let json = e2e::run_python(
        READ_RSMF,
        &[schema.to_str().unwrap(), export.to_str().unwrap()],
    );
    let files: BTreeMap<String, Value> = serde_json::from_str(json.trim()).expect("JSON");
    for (name, file) in &files {
        assert_eq!(file["schema_errors"], Value::Array(vec![]), "{name}");
        let headers = &file["headers"];
        let events = file["manifest"]["events"].as_array().unwrap();
        assert_eq!(headers["X-RSMF-Version"], "2.0.0", "{name}");
        assert_eq!(headers["X-RSMF-Application"], "Microsoft Teams", "{name}");
        assert!(
            headers["X-RSMF-Generator"]
                .as_str()
                .unwrap()
                .starts_with("teams-archiver")
        );
        assert_eq!(
            headers["X-RSMF-EventCount"],
            events.len().to_string().as_str(),
            "{name}"
        );
        let attachments = file["entries"].as_array().unwrap().len() - 1;
        assert_eq!(
            headers["X-RSMF-AttachmentCount"],
            attachments.to_string().as_str()
        );
        assert_eq!(
            headers["X-RSMF-EventCollectionID"], file["manifest"]["eventcollectionid"],
            "{name}"
        );
        assert!(headers.get("X-RSMF-Participants").is_some(), "{name}");
        let stamps: Vec<&str> = events
            .iter()
            .filter_map(|e| e["timestamp"].as_str())
            .collect();
        if let (Some(begin), Some(end)) = (stamps.iter().min(), stamps.iter().max()) {
            assert_eq!(headers["X-RSMF-BeginDate"], *begin, "{name}");
            assert_eq!(headers["X-RSMF-EndDate"], *end, "{name}");
        }
    }
    files
}

fn jsonl(export: &Path) -> Vec<Value> {
    std::fs::read_to_string(export.join("messages.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// An archived row: column name to value.
type Row = BTreeMap<String, Option<String>>;

/// Versions in an archive, by (conversation, message id or content hash).
fn archived_versions(archive: &Path) -> BTreeMap<(String, String), Vec<Row>> {
    let mut versions: BTreeMap<(String, String), Vec<_>> = BTreeMap::new();
    let columns = ["id", "chat_id", "channel_id", "content_sha256", "raw_json"];
    for row in e2e::parquet_files::rows(archive, "chat_messages", &columns) {
        let conversation = row["chat_id"]
            .clone()
            .or(row["channel_id"].clone())
            .unwrap_or_default();
        let id = row["id"]
            .clone()
            .unwrap_or_else(|| row["content_sha256"].clone().unwrap());
        versions.entry((conversation, id)).or_default().push(row);
    }
    versions
}

fn chromium() -> String {
    std::env::var("TEAMS_ARCHIVER_TEST_CHROMIUM").unwrap_or_else(|_| {
        panic!(
            "TEAMS_ARCHIVER_TEST_CHROMIUM is not set: this test renders HTML in headless Chromium. \
             Run it through scripts/test.sh (or `eval \"$(scripts/dev-env.sh)\"` first)."
        )
    })
}

fn chromium_command(profile: &Path) -> Command {
    let mut command = Command::new(chromium());
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--hide-scrollbars",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// Share of the screenshot's pixels that are not the page background.
const INKED_SHARE: &str = r#"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "a PNG"
pos, idat, width, height, depth, kind = 8, b"", 0, 0, 0, 0
while pos < len(data):
    length, chunk = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    if chunk == b"IHDR":
        width, height, depth, kind = struct.unpack(">IIBB", body[:10])
    elif chunk == b"IDAT":
        idat += body
    pos += 12 + length
assert depth == 8 and kind in (2, 6), (depth, kind)
bpp = 3 if kind == 2 else 4
raw, stride = zlib.decompress(idat), width * bpp
rows, prev, i = [], bytearray(stride), 0
for _ in range(height):
    f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b, c = prev[x], prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(bytes(line)); prev = line
background = rows[0][:3]
inked = sum(1 for row in rows for x in range(0, stride, bpp) if row[x:x + 3] != background)
print(inked / (width * height))
"#;

/// Renders an HTML file in headless Chromium: its screenshot must show ink, and the
/// rendered page must hold `expected` text.
fn assert_renders(html: &Path, expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", html.display());
    let shot = dir.path().join("page.png");
    let output = chromium_command(&dir.path().join("profile"))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1000,1400")
        .arg(&url)
        .output()
        .expect("chromium starts");
    assert!(
        shot.is_file(),
        "no screenshot of {url}:\n{}",
        output_text(&output)
    );
    let inked: f64 = e2e::run_python(INKED_SHARE, &[shot.to_str().unwrap()])
        .trim()
        .parse()
        .unwrap();
    assert!(inked > 0.01, "the screenshot of {url} is blank ({inked})");
    let dom = chromium_command(&dir.path().join("profile2"))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("chromium starts");
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    for text in expected {
        assert!(
            dom.contains(text),
            "{text:?} is not in the rendered page {url}"
        );
    }
    assert!(
        !dom.to_lowercase().contains("<script"),
        "no script in {url}"
    );
}

/// The HTML transcript of an export that holds `text`.
fn transcript_containing(out: &Path, text: &str) -> PathBuf {
    std::fs::read_dir(out.join("html"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read_to_string(p).unwrap().contains(text))
        .unwrap_or_else(|| panic!("no transcript holds {text:?}"))
}

fn flip_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn docs_examples_export_in_every_format_and_verify_names_altered_files() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    ingest_docs(&archive);
    let out = dir.path().join("export");
    let said = export(
        &archive,
        &out,
        &with_formats(&["rsmf", "jsonl", "csv", "html"], &["--include-deleted"]),
    );
    assert!(said.contains("exported "), "{said}");

    // One JSONL line per archived message: its latest version, as the archive holds it.
    let archived = archived_versions(&archive);
    let lines = jsonl(&out);
    assert_eq!(lines.len(), archived.len(), "{said}");
    for line in &lines {
        let conversation = line["chat_id"]
            .as_str()
            .or(line["channel_id"].as_str())
            .unwrap_or("")
            .to_string();
        let id = line["id"]
            .as_str()
            .or(line["content_sha256"].as_str())
            .unwrap()
            .to_string();
        let versions = &archived[&(conversation, id)];
        assert_eq!(line["versions"].as_u64(), Some(versions.len() as u64));
        let row = versions
            .iter()
            .find(|r| r["content_sha256"].as_deref() == line["content_sha256"].as_str())
            .expect("the exported version is an archived row");
        assert_eq!(line["raw_json"].as_str(), row["raw_json"].as_deref());
    }
    let csv_rows = e2e::run_python(
        "import csv, sys\nrows = list(csv.reader(open(sys.argv[1], newline='', encoding='utf-8')))\nprint(len(rows) - 1, rows[0][0])",
        &[out.join("messages.csv").to_str().unwrap()],
    );
    assert_eq!(
        csv_rows.trim(),
        format!("{} date", lines.len()),
        "a header and a row per message"
    );

    // Every message is an event of its conversation-day's RSMF.
    let rsmf = read_rsmf(&out);
    let events: usize = rsmf
        .values()
        .map(|f| f["manifest"]["events"].as_array().unwrap().len())
        .sum();
    assert!(
        events >= lines.len(),
        "{events} events for {} messages",
        lines.len()
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("export_manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["totals"]["messages"].as_u64(),
        Some(lines.len() as u64)
    );
    let rsmf_outputs = manifest["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["format"] == "rsmf")
        .count();
    assert_eq!(rsmf_outputs, rsmf.len());

    // The channel thread of 2021-03-29 reads as a thread in the browser.
    let html = std::fs::read_dir(out.join("html/2021-03-29"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let page = std::fs::read_to_string(p).unwrap();
            page.contains("Reply1") && page.contains("class=\"replies\"")
        })
        .expect("the channel transcript with replies");
    assert_renders(
        &html,
        &[
            "Robin Kline",
            "Hello World 28th March 2021",
            "Reply1",
            "2021-03-29 03:49:07 UTC",
        ],
    );

    // Clean, then one byte changed in the archive and one in the export.
    let all = verify_export(&archive, &out, 0);
    assert!(all.contains("0 problems"), "{all}");
    let victim = e2e::parquet_files::table_files(&archive, "chat_messages").remove(0);
    flip_byte(&victim);
    let rsmf_victim = out.join(rsmf.keys().next().unwrap());
    flip_byte(&rsmf_victim);
    let all = verify_export(&archive, &out, 4);
    let victim_key = victim.strip_prefix(&archive).unwrap().display().to_string();
    assert!(
        all.contains(&format!("altered file: {victim_key}")),
        "{all}"
    );
    assert!(
        all.contains(&format!("altered file: {}", rsmf.keys().next().unwrap())),
        "{all}"
    );

    // An export from an archive file that no longer matches its record says so (exit 4),
    // and so does one from an archive that lost a recorded file.
    let export_jsonl = |name: &str, says: &str| {
        let output = archiver()
            .args(["export", "--format", "jsonl", "--archive"])
            .arg(&archive)
            .arg("--out")
            .arg(dir.path().join(name))
            .output()
            .unwrap();
        let all = output_text(&output);
        assert_eq!(output.status.code(), Some(4), "{all}");
        assert!(all.contains(says), "{all}");
    };
    export_jsonl("again", &victim_key);
    std::fs::remove_file(&victim).unwrap();
    export_jsonl(
        "third",
        &format!("missing archive file, its rows not exported: {victim_key}"),
    );
}

#[test]
fn a_simulated_tenant_exports_with_edits_deletions_reactions_and_custodians() {
    let tenant = Tenant::start(small_tenant());
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let sync = |t: &Tenant| {
        let output = t
            .sync(ARCHIVER, archive.to_str().unwrap())
            .args(["--source", "chats", "--source", "channels"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", output_text(&output));
    };
    sync(&tenant);
    let before = tenant.sim.snapshot();
    let chat: Vec<_> = before
        .messages
        .iter()
        .filter(|m| {
            matches!(m.conversation, Conversation::Chat { .. })
                && !m.deleted
                && serde_json::from_str::<Value>(&m.json).unwrap()["messageType"] == "message"
        })
        .collect();
    let (edited, deleted) = (chat[0].clone(), chat[1].clone());
    let original: Value = serde_json::from_str(&edited.json).unwrap();
    tenant
        .sim
        .edit_message(&edited.message_ref(), "<p>edited for the record</p>")
        .unwrap();
    tenant
        .sim
        .soft_delete_message(&deleted.message_ref())
        .unwrap();
    sync(&tenant);
    let after = tenant.sim.snapshot();
    let directory = tenant.sim.directory();

    let out = dir.path().join("all");
    export(
        &archive,
        &out,
        &with_formats(&["rsmf", "jsonl", "html"], &["--include-deleted"]),
    );
    let lines = jsonl(&out);
    assert_eq!(
        lines.len(),
        after.messages.len(),
        "one line per message the tenant holds"
    );
    let rsmf = read_rsmf(&out);
    let events: BTreeMap<(String, String), Value> = rsmf
        .values()
        .flat_map(|f| f["manifest"]["events"].as_array().unwrap().clone())
        .filter_map(|e| {
            let conversation = e["conversation"].as_str()?.to_string();
            Some(((conversation, e["id"].as_str()?.to_string()), e))
        })
        .collect();
    let key = |m: &graph_sim::MessageVersion| match &m.conversation {
        Conversation::Chat { chat_id } => (chat_id.clone(), m.id.clone()),
        Conversation::Channel {
            team_id,
            channel_id,
        } => (format!("{team_id}/{channel_id}"), m.id.clone()),
    };

    // The edit, with the text before and after it, from the two archived versions.
    let event = &events[&key(&edited)];
    let edits = event["edits"].as_array().unwrap();
    let last = edits.last().unwrap();
    assert_eq!(last["new"], "edited for the record");
    let before_text = lines
        .iter()
        .find(|l| l["id"] == edited.id.as_str())
        .map(|l| l["versions"].as_u64());
    assert_eq!(before_text, Some(Some(2)), "two versions archived");
    assert!(
        last["previous"].as_str().is_some_and(|p| !p.is_empty()),
        "{event}"
    );
    assert_eq!(event["body"], "edited for the record");
    assert!(original["body"]["content"].as_str().is_some());
    // The deletion, still showing what was said.
    let event = &events[&key(&deleted)];
    assert_eq!(event["deleted"], true);
    assert!(!event["body"].as_str().unwrap().is_empty(), "{event}");

    // Reactions with who gave them, as the tenant has them.
    let mut reacted = 0;
    for message in &after.messages {
        let json: Value = serde_json::from_str(&message.json).unwrap();
        let Some(reactions) = json["reactions"].as_array().filter(|r| !r.is_empty()) else {
            continue;
        };
        reacted += 1;
        let event = &events[&key(message)];
        let total: u64 = event["reactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["count"].as_u64().unwrap())
            .sum();
        assert_eq!(total as usize, reactions.len(), "{event}");
        let people: BTreeSet<&str> = event["reactions"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["participants"].as_array().unwrap())
            .map(|p| p.as_str().unwrap())
            .collect();
        let expected: BTreeSet<&str> = reactions
            .iter()
            .filter_map(|r| r["user"]["user"]["id"].as_str())
            .collect();
        assert_eq!(people, expected);
    }
    assert!(reacted > 0, "the tenant has reactions");

    // Channel replies point at their root when it is in the same file.
    let replies = after
        .messages
        .iter()
        .filter(|m| m.reply_to_id.is_some())
        .count();
    let parented = events
        .values()
        .filter(|e| e.get("parent").is_some())
        .count();
    assert!(
        replies > 0 && parented > 0,
        "{replies} replies, {parented} with a parent"
    );

    // Participants carry the directory's names and emails.
    for file in rsmf.values() {
        for participant in file["manifest"]["participants"].as_array().unwrap() {
            if let Some(user) = directory
                .users
                .iter()
                .find(|u| u.id == participant["id"].as_str().unwrap())
            {
                assert_eq!(participant["display"], user.display_name.as_str());
                assert_eq!(participant["email"], user.mail.as_str());
            }
        }
    }

    // One custodian, named by userPrincipalName: exactly the chat messages they held.
    let custodian = &directory.users[0];
    let mine = dir.path().join("custodian");
    export(
        &archive,
        &mine,
        &with_formats(
            &["rsmf", "jsonl"],
            &[
                "--include-deleted",
                "--custodian",
                &custodian.user_principal_name,
            ],
        ),
    );
    let expected: BTreeSet<(String, String)> = after
        .chat_messages_of(&custodian.id)
        .into_iter()
        .map(key)
        .collect();
    let exported: BTreeSet<(String, String)> = jsonl(&mine)
        .iter()
        .map(|l| {
            (
                l["chat_id"].as_str().unwrap().to_string(),
                l["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(exported, expected);
    for line in jsonl(&mine) {
        assert!(
            line["custodians"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == custodian.id.as_str()),
            "{line}"
        );
    }
    let custodian_rows = e2e::tenant::custodian_counts(&archive);
    for line in jsonl(&out) {
        let held: BTreeSet<String> = custodian_rows
            .keys()
            .filter(|(_, hash)| hash == line["content_sha256"].as_str().unwrap())
            .map(|(c, _)| c.clone())
            .collect();
        let listed: BTreeSet<String> = line["custodians"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        assert_eq!(listed, held, "custodians of {}", line["id"]);
    }
    for file in read_rsmf(&mine).values() {
        let conversation = &file["manifest"]["conversations"][0];
        assert_eq!(conversation["type"], "direct");
        assert_eq!(conversation["custodian"], custodian.id.as_str());
        assert!(
            file["headers"]["X-RSMF-Custodian"]
                .as_str()
                .unwrap()
                .contains(&custodian.display_name)
        );
    }

    // A day's chat transcript renders with its messages visible.
    let page = transcript_containing(&out, "edited for the record");
    assert_renders(
        &page,
        &[
            "edited for the record",
            "Edited",
            edited_sender(&edited).as_str(),
        ],
    );

    // Byte for byte the same again.
    let again = dir.path().join("again");
    export(
        &archive,
        &again,
        &with_formats(&["rsmf", "jsonl", "html"], &["--include-deleted"]),
    );
    for (a, b) in [(&out, &again)] {
        let list = |root: &Path| -> Vec<PathBuf> {
            let mut files = Vec::new();
            let mut stack = vec![root.to_path_buf()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(d).unwrap() {
                    let p = e.unwrap().path();
                    if p.is_dir() {
                        stack.push(p)
                    } else if !p.ends_with("export_manifest.json") {
                        files.push(p.strip_prefix(root).unwrap().to_path_buf())
                    }
                }
            }
            files.sort();
            files
        };
        assert_eq!(list(a), list(b));
        for file in list(a) {
            assert!(
                std::fs::read(a.join(&file)).unwrap() == std::fs::read(b.join(&file)).unwrap(),
                "{}",
                file.display()
            );
        }
    }
}

fn edited_sender(message: &graph_sim::MessageVersion) -> String {
    let json: Value = serde_json::from_str(&message.json).unwrap();
    json["from"]["user"]["displayName"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Every file under `root` but the manifest, relative, with its bytes.
fn export_files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.ends_with("export_manifest.json") {
                let bytes = std::fs::read(&path).unwrap();
                files.insert(path.strip_prefix(root).unwrap().to_path_buf(), bytes);
            }
        }
    }
    files
}

#[test]
fn an_archive_on_s3_exports_and_verifies_like_a_local_copy() {
    let bucket = e2e::create_bucket("export", false);
    let url = format!("s3://{bucket}/archive");
    let env = e2e::s3_env();
    let on_s3 = |args: Vec<std::ffi::OsString>| {
        let mut command = archiver();
        command
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        command
    };
    let mut ingest: Vec<std::ffi::OsString> =
        vec!["ingest".into(), "--out".into(), url.clone().into()];
    for d in ["v1.0", "beta", "concepts"] {
        ingest.push(e2e::graph_docs_fixtures().join(d).into());
    }
    run(&mut on_s3(ingest), 3);

    let dir = tempfile::tempdir().unwrap();
    let formats = ["--format", "rsmf", "--format", "jsonl", "--format", "html"];
    let from_s3 = dir.path().join("from-s3");
    let mut args: Vec<std::ffi::OsString> = vec![
        "export".into(),
        "--archive".into(),
        url.clone().into(),
        "--out".into(),
        from_s3.clone().into(),
    ];
    args.extend(formats.iter().map(Into::into));
    run(&mut on_s3(args), 0);
    let local = dir.path().join("local");
    e2e::download_bucket(&bucket, "archive", &local);
    let from_local = dir.path().join("from-local");
    export(&local, &from_local, &formats);
    let (a, b) = (export_files(&from_s3), export_files(&from_local));
    assert!(!a.is_empty());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in &a {
        assert!(bytes == &b[path], "{} differs", path.display());
    }
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(from_s3.join("export_manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["archive"], url.as_str());
    let files = manifest["archive_files"].as_array().unwrap();
    assert!(
        !files.is_empty() && files.iter().all(|f| f["check"] == "match"),
        "{manifest}"
    );

    let all = run(
        &mut on_s3(vec![
            "verify".into(),
            "--archive".into(),
            url.clone().into(),
        ]),
        0,
    );
    assert!(all.contains("0 problems"), "{all}");
}

/// Every request Chromium makes through the proxy it is given: its first line.
struct CountingProxy {
    address: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl CountingProxy {
    fn start() -> CountingProxy {
        use std::io::{BufRead, BufReader};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut line = String::new();
                let _ = BufReader::new(&stream).read_line(&mut line);
                seen.lock().unwrap().push(line.trim().to_string());
            }
        });
        CountingProxy { address, requests }
    }

    /// Requests other than those of Chromium's own services (component updates and the like).
    fn requests(&self) -> Vec<String> {
        let own = [
            ".google.com",
            ".googleapis.com",
            ".gstatic.com",
            ".gvt1.com",
        ];
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|line| {
                let host = line.split_whitespace().nth(1).unwrap_or("");
                let host = host
                    .trim_start_matches("http://")
                    .trim_start_matches("https://");
                let host = host.split([':', '/']).next().unwrap_or("");
                !own.iter().any(|d| host.ends_with(d))
            })
            .cloned()
            .collect()
    }
}

/// A screenshot of `html` in headless Chromium, every request sent to `proxy`.
fn screenshot_through(html: &Path, proxy: &CountingProxy) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("page.png");
    let output = chromium_command(&dir.path().join("profile"))
        .arg("--disable-component-update")
        .arg(format!("--proxy-server=http://{}", proxy.address))
        .arg("--proxy-bypass-list=<-loopback>")
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1000,1400")
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium starts");
    std::fs::read(&shot)
        .unwrap_or_else(|_| panic!("no screenshot of {html:?}:\n{}", output_text(&output)))
}

#[test]
fn an_image_deleted_in_graph_still_shows_in_the_html_transcript_without_a_network_request() {
    use graph_sim::{NewContent, NewImage};
    let tenant = Tenant::start(small_tenant());
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let (chat_id, member) = e2e::tenant::a_chat_and_its_member(&tenant.sim.snapshot());
    let sim = tenant.sim.handle();
    let posted = sim
        .add_chat_message_with(
            &chat_id,
            &member,
            "<p>the whiteboard</p>",
            &NewContent {
                images: vec![NewImage { size: Some(20_000) }],
                files: vec![],
            },
        )
        .unwrap();
    let sync = || {
        let output = tenant
            .sync(ARCHIVER, archive.to_str().unwrap())
            .args(["--content", "all"])
            .output()
            .unwrap();
        e2e::assert_success("the archiver", &output);
    };
    sync();
    // Graph deletes the image; the next run finds it gone.
    let piece = sim
        .content()
        .into_iter()
        .find(|p| p.messages.iter().any(|m| m.id == posted.message.id))
        .expect("the image in the simulator");
    sim.delete_content(&piece.id).unwrap();
    sync();

    let out = dir.path().join("export");
    export(&archive, &out, &with_formats(&["html"], &[]));
    let page = transcript_containing(&out, "the whiteboard");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<img"), "the image is shown inline");
    let copies: Vec<PathBuf> = std::fs::read_dir(out.join("files"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");

    let proxy = CountingProxy::start();
    let with_image = screenshot_through(&page, &proxy);
    // The same page without the export's copy of the image looks different: what showed
    // was that copy.
    std::fs::remove_file(&copies[0]).unwrap();
    let without_image = screenshot_through(&page, &proxy);
    assert_ne!(with_image, without_image, "the image did not show");
    assert_eq!(
        proxy.requests(),
        Vec::<String>::new(),
        "requests left the page"
    );
}
