//! `export_manifest.json`: the chain of custody of an export. What was asked, which
//! archive files were read (with their SHA-256, recomputed, and the archive's record of
//! it), every file written (with its SHA-256 and counts), what went wrong, the tool and
//! the time. Apart from `created_at`, the same archive and selection give the same bytes.

use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::output::OutputEntry;
use crate::reader::ArchiveFileRead;
use crate::spool::Spool;

pub const MANIFEST_FILE: &str = "export_manifest.json";
pub const MANIFEST_FORMAT: &str = "teams-archiver/export/1";

/// The selection as asked, and as resolved (custodians by Graph id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectionRecord {
    pub formats: Vec<String>,
    pub custodians: Vec<String>,
    pub custodian_ids: Vec<String>,
    pub chats: Vec<String>,
    pub team: Option<String>,
    pub channel: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub keywords: Vec<String>,
    pub include_deleted: bool,
    pub all_versions: bool,
}

/// Counts over the whole export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Messages selected (each with all its archived versions).
    pub messages: u64,
    /// Archived versions of the selected messages.
    pub versions: u64,
    pub conversations: u64,
    pub conversation_days: u64,
    /// Date partitions read (the selection's range only).
    pub partitions: u64,
    /// Archive files read: Parquet files and blobs.
    pub archive_files: u64,
    /// `chat_messages` (and for mail, `mail_messages`) rows read, selected or not.
    pub rows_read: u64,
    pub outputs: u64,
    pub errors: u64,
    /// Mail messages exported, and their versions (one EML each).
    #[serde(default)]
    pub mail_messages: u64,
    #[serde(default)]
    pub mail_versions: u64,
    /// Blobs copied into `files/`, and their bytes.
    #[serde(default)]
    pub files_copied: u64,
    #[serde(default)]
    pub file_bytes_copied: u64,
}

/// The manifest as read back (by `verify --export`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportManifest {
    pub format: String,
    pub tool: String,
    pub created_at: String,
    pub archive: String,
    pub selection: SelectionRecord,
    pub totals: Totals,
    pub errors: Vec<String>,
    pub archive_files: Vec<ArchiveFileRead>,
    pub outputs: Vec<OutputEntry>,
}

/// The parts of a manifest that are small enough to hold; the lists come from spools.
pub(crate) struct ManifestHead<'a> {
    pub tool: &'a str,
    pub created_at: &'a str,
    pub archive: &'a str,
    pub selection: &'a SelectionRecord,
    pub totals: &'a Totals,
}

/// Writes the manifest, streaming the long lists from their spools.
pub(crate) fn write_manifest(
    out: &mut impl Write,
    head: &ManifestHead<'_>,
    errors: Spool<String>,
    archive_files: Spool<ArchiveFileRead>,
    outputs: Spool<OutputEntry>,
) -> std::io::Result<()> {
    writeln!(out, "{{")?;
    writeln!(out, "  \"format\": {},", json(MANIFEST_FORMAT))?;
    writeln!(out, "  \"tool\": {},", json(head.tool))?;
    writeln!(out, "  \"created_at\": {},", json(head.created_at))?;
    writeln!(out, "  \"archive\": {},", json(head.archive))?;
    writeln!(out, "  \"selection\": {},", json(head.selection))?;
    writeln!(out, "  \"totals\": {},", json(head.totals))?;
    writeln!(out, "  \"errors\": [")?;
    errors.write_items(out, "    ")?;
    writeln!(out, "  ],")?;
    writeln!(out, "  \"archive_files\": [")?;
    archive_files.write_items(out, "    ")?;
    writeln!(out, "  ],")?;
    writeln!(out, "  \"outputs\": [")?;
    outputs.write_items(out, "    ")?;
    writeln!(out, "  ]")?;
    writeln!(out, "}}")?;
    Ok(())
}

/// Compact JSON of a value that always serialises (strings, plain structs).
fn json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streamed_manifest_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut errors = Spool::create(dir.path(), "e").unwrap();
        errors.push(&"a \"quoted\" problem".to_string()).unwrap();
        let files = Spool::create(dir.path(), "f").unwrap();
        let mut outputs = Spool::create(dir.path(), "o").unwrap();
        outputs
            .push(&OutputEntry {
                path: "messages.jsonl".into(),
                format: "jsonl".into(),
                bytes: 3,
                sha256: "ab".into(),
                counts: Default::default(),
            })
            .unwrap();
        let selection = SelectionRecord {
            formats: vec!["jsonl".into()],
            custodians: vec![],
            custodian_ids: vec![],
            chats: vec![],
            team: None,
            channel: None,
            from: None,
            to: None,
            keywords: vec![],
            include_deleted: false,
            all_versions: false,
        };
        let mut bytes = Vec::new();
        write_manifest(
            &mut bytes,
            &ManifestHead {
                tool: "teams-archiver 0",
                created_at: "2024-01-01T00:00:00Z",
                archive: "/a",
                selection: &selection,
                totals: &Totals::default(),
            },
            errors,
            files,
            outputs,
        )
        .unwrap();
        let manifest: ExportManifest = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(manifest.format, MANIFEST_FORMAT);
        assert_eq!(manifest.errors, vec!["a \"quoted\" problem".to_string()]);
        assert!(manifest.archive_files.is_empty());
        assert_eq!(manifest.outputs[0].path, "messages.jsonl");
    }
}
