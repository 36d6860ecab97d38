//! The README and ARCHITECTURE.md stay true: every flag the README names exists in the
//! program's `--help`, every file or folder they name exists, and every crate has its row
//! in ARCHITECTURE's table; the memory floor is stated as the program has it.

use std::collections::BTreeSet;
use std::process::Command;

const ARCHIVER: &str = env!("CARGO_BIN_EXE_archiver");
const COMMANDS: [&str; 7] = [
    "ingest", "sync", "demo", "status", "export", "verify", "schema",
];

fn doc(name: &str) -> String {
    std::fs::read_to_string(e2e::repo_root().join(name)).unwrap()
}

/// Every `--flag` in the text (inside code spans and code blocks alike).
fn flags(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("--") {
        let start = i + at;
        let before = start.checked_sub(1).map(|b| bytes[b]);
        let mut end = start + 2;
        while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'-') {
            end += 1;
        }
        let flag = &text[start..end];
        let word_start = before.is_none_or(|b| b == b' ' || b == b'`' || b == b'(' || b == b'\n');
        if word_start && flag.len() > 3 && !flag.ends_with('-') {
            found.insert(flag.to_string());
        }
        i = end.max(start + 2);
    }
    found
}

fn all_help() -> String {
    let mut help = String::new();
    for args in std::iter::once(vec!["--help"]).chain(COMMANDS.iter().map(|c| vec![*c, "--help"])) {
        let output = Command::new(ARCHIVER).args(&args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        help.push_str(&String::from_utf8_lossy(&output.stdout));
    }
    help
}

#[test]
fn every_flag_the_readme_names_exists() {
    let help = all_help();
    // Flags of other programs the README shows beside ours.
    let others = ["--release", "--check", "--all-targets", "--workspace"];
    let named = flags(&doc("README.md"));
    assert!(
        named.contains("--expect-head") && named.len() > 15,
        "{named:?}"
    );
    assert!(!help.contains("--no-such-flag "));
    let missing: Vec<String> = named
        .into_iter()
        .filter(|f| !others.contains(&f.as_str()))
        .filter(|f| {
            !help.contains(&format!("{f} "))
                && !help.contains(&format!("{f}\n"))
                && !help.contains(&format!("{f}="))
                && !help.contains(&format!("{f},"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "README names flags no command has: {missing:?}"
    );
}

/// Paths in code spans that name something in the repository.
fn repo_paths(text: &str) -> BTreeSet<String> {
    let roots = ["crates/", "tests/", "scripts/", "schemas/", "deploy/"];
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| roots.iter().any(|r| span.starts_with(r)))
        .filter(|span| !span.contains(' ') && !span.contains('<') && !span.contains('*'))
        .map(|span| span.trim_end_matches('/').to_string())
        .collect()
}

#[test]
fn every_path_the_docs_name_exists() {
    let root = e2e::repo_root();
    for name in ["README.md", "ARCHITECTURE.md"] {
        let named = repo_paths(&doc(name));
        assert!(named.len() >= 3, "{name}: {named:?}");
        let missing: Vec<String> = named
            .into_iter()
            .filter(|p| !root.join(p).exists())
            .collect();
        assert!(
            missing.is_empty(),
            "{name} names paths that do not exist: {missing:?}"
        );
    }
}

#[test]
fn every_crate_has_its_row_in_architecture() {
    let architecture = doc("ARCHITECTURE.md");
    for entry in std::fs::read_dir(e2e::repo_root().join("crates")).unwrap() {
        let entry = entry.unwrap();
        let manifest = std::fs::read_to_string(entry.path().join("Cargo.toml")).unwrap();
        let name = manifest
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .unwrap()
            .trim_matches('"');
        assert!(
            architecture.contains(&format!("| `{name}` ")),
            "ARCHITECTURE.md has no row for crate {name}"
        );
        let lib = entry.path().join("src/lib.rs");
        if lib.exists() {
            let text = std::fs::read_to_string(&lib).unwrap();
            assert!(
                text.starts_with("//!"),
                "{} opens with its crate doc",
                lib.display()
            );
        }
    }
}

/// The memory floor the program measures against is the one `sync --help`, the README and
/// the benchmark state.
#[test]
fn the_memory_floor_is_stated_as_the_program_has_it() {
    let floor = pipeline::sync::MEMORY_FLOOR_MIB;
    let output = Command::new(ARCHIVER)
        .args(["sync", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(help.contains(&format!("floor of {floor} MiB")), "{help}");
    let readme = doc("README.md")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(readme.contains(&format!("floor of {floor} MiB")));
    assert!(doc("scripts/bench-sync.sh").contains(&format!("floor_mib={floor}\n")));
}
