//! Reading the Graph docs fixtures (tests/fixtures/graph-docs) as a caller would: pages,
//! their items as exact byte slices, and what index.json says each file holds.

#![allow(dead_code)]

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use transform::RowContext;

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/graph-docs")
}

#[derive(Deserialize)]
struct Index {
    fixtures: Vec<Entry>,
}

#[derive(Deserialize, Clone)]
pub struct Entry {
    pub file: String,
    #[serde(rename = "blockType")]
    pub block_type: String,
    #[serde(rename = "annotatedType")]
    pub annotated_type: Option<String>,
    pub features: serde_json::Value,
}

impl Entry {
    pub fn chat_messages(&self) -> usize {
        self.features
            .get("chatMessages")
            .and_then(|v| v.as_u64())
            .unwrap_or(0) as usize
    }
    pub fn mail_messages(&self) -> usize {
        self.features
            .get("mailMessages")
            .and_then(|v| v.as_u64())
            .unwrap_or(0) as usize
    }
    pub fn is_mail(&self) -> bool {
        self.mail_messages() > 0
    }
}

/// A fixture file that holds messages, with its text.
pub struct Fixture {
    pub entry: Entry,
    pub text: String,
}

/// Every fixture that holds chat or mail messages, except request bodies.
pub fn message_fixtures() -> Vec<Fixture> {
    let dir = fixtures_dir();
    let index: Index =
        serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).expect("index.json"))
            .expect("index.json parses");
    index
        .fixtures
        .into_iter()
        .filter(|e| e.block_type != "request" && e.chat_messages() + e.mail_messages() > 0)
        .map(|entry| {
            let text = std::fs::read_to_string(dir.join(&entry.file)).expect("fixture file");
            Fixture { entry, text }
        })
        .collect()
}

#[derive(Deserialize)]
struct Page<'a> {
    #[serde(borrow)]
    value: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct Wrapped<'a> {
    #[serde(borrow)]
    message: Option<&'a RawValue>,
    #[serde(borrow, rename = "lastMessagePreview")]
    last_message_preview: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct WithReplies<'a> {
    #[serde(borrow)]
    replies: Option<Vec<&'a RawValue>>,
}

/// The message items of a fixture, as exact slices of its text: the elements of `value`
/// (a pinned message's `message`, a chat's `lastMessagePreview`), or the body itself.
pub fn items(text: &str) -> Vec<&str> {
    let page: Page = serde_json::from_str(text).unwrap_or(Page { value: None });
    let Some(values) = page.value else {
        return vec![text];
    };
    values
        .into_iter()
        .map(|v| {
            let w: Wrapped = serde_json::from_str(v.get()).unwrap_or(Wrapped {
                message: None,
                last_message_preview: None,
            });
            w.message.or(w.last_message_preview).unwrap_or(v).get()
        })
        .collect()
}

/// The rows an item becomes, in order: the item, then its expanded replies (depth first).
pub fn rows_of(item: &str) -> Vec<&str> {
    let mut out = vec![item];
    let w: WithReplies = serde_json::from_str(item).unwrap_or(WithReplies { replies: None });
    for r in w.replies.unwrap_or_default() {
        out.extend(rows_of(r.get()));
    }
    out
}

pub fn fetched_at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-02T03:04:05.678901Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub fn ctx<'a>(source: &'a str, custodian: Option<&'a str>) -> RowContext<'a> {
    RowContext {
        source,
        fetched_at: fetched_at(),
        run_id: "run-1",
        custodian_user_id: custodian,
    }
}

/// The items of list-of-struct column `column` in row `row` (mentions, parse errors, ...).
pub fn list_items(
    batch: &arrow::record_batch::RecordBatch,
    column: &str,
    row: usize,
) -> arrow::array::StructArray {
    use arrow::array::AsArray;
    batch
        .column_by_name(column)
        .unwrap()
        .as_list::<i32>()
        .value(row)
        .as_struct()
        .clone()
}
