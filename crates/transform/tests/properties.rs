//! Properties of the transform on generated input: any JSON object becomes exactly one row
//! that keeps its bytes, malformed values are named in `parse_errors` instead of stopping
//! anything, and the content hash ignores only what RFC 8785 says it should.
//!
//! proptest, seeded so that CI runs the same cases every time: `PROPTEST_RNG_SEED` picks
//! another seed (a failure shows the minimal input it found), `PROPTEST_CASES` the
//! number of cases of each property (defaults below, a few seconds each).

mod common;

use arrow::array::{Array, AsArray};
use common::*;
use proptest::prelude::*;
use serde_json::{Map, Value};
use transform::{ChatMessageBuilder, MailMessageBuilder, canonical_sha256, html_to_text};

/// Properties that build rows run this many cases unless `PROPTEST_CASES` says otherwise.
fn config(cases: u32) -> ProptestConfig {
    fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
        std::env::var(name).ok().and_then(|v| v.parse().ok())
    }
    ProptestConfig {
        cases: env("PROPTEST_CASES").unwrap_or(cases),
        rng_seed: proptest::test_runner::RngSeed::Fixed(env("PROPTEST_RNG_SEED").unwrap_or(9)),
        ..ProptestConfig::default()
    }
}

/// Any JSON value, a few levels deep, with the strings and numbers Graph payloads hold.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,24}".prop_map(Value::String),
        graph_like_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Timestamps in and out of range, malformed ones, HTML, ids.
fn graph_like_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("9999-12-31T23:59:59-01:00".to_string()),
        Just("0000-01-01T00:00:00Z".to_string()),
        Just("2021-02-30T00:00:00Z".to_string()),
        Just("2021-03-1706:47:05.123Z".to_string()),
        (0u32..10_000, 1u32..13, 1u32..32, 0u32..24)
            .prop_map(|(y, m, d, h)| format!("{y:04}-{m:02}-{d:02}T{h:02}:00:00.1234567+05:30")),
        "<(p|div|ul|li|at|attachment|emoji)( id=\"[0-9]\")?>[a-z ]{0,12}".prop_map(|s| s),
        "[0-9]{1,20}".prop_map(|s| s),
    ]
}

/// Keys: Graph's own (so typed columns meet wrong types) and anything else.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "id",
            "chatId",
            "replyToId",
            "messageType",
            "createdDateTime",
            "lastModifiedDateTime",
            "deletedDateTime",
            "receivedDateTime",
            "body",
            "content",
            "contentType",
            "from",
            "user",
            "displayName",
            "attachments",
            "mentions",
            "reactions",
            "channelIdentity",
            "eventDetail",
            "@odata.type",
            "importance",
            "toRecipients",
            "emailAddress",
        ])
        .prop_map(str::to_string),
        ".{0,12}",
    ]
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(key(), json_value(), 0..12).prop_map(|m| m.into_iter().collect())
}

/// The rows of one appended item: (raw_json, content_sha256, parse_errors present).
fn rows(batch: &arrow::record_batch::RecordBatch) -> Vec<(String, String, bool)> {
    let raw = batch.column_by_name("raw_json").unwrap().as_string::<i32>();
    let sha = batch
        .column_by_name("content_sha256")
        .unwrap()
        .as_string::<i32>();
    let errors = batch.column_by_name("parse_errors").unwrap();
    (0..batch.num_rows())
        .map(|i| {
            (
                raw.value(i).to_string(),
                sha.value(i).to_string(),
                !errors.is_null(i),
            )
        })
        .collect()
}

fn expected_sha(raw: &str) -> String {
    hex::encode(canonical_sha256(raw).expect("valid JSON"))
}

/// A wrong value where a typed column expects something else must be named.
fn has_wrong_typed_timestamp(item: &Map<String, Value>) -> bool {
    ["createdDateTime", "lastModifiedDateTime", "deletedDateTime"]
        .iter()
        .any(|k| match item.get(*k) {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| {
                    let year = t.with_timezone(&chrono::Utc).format("%Y").to_string();
                    year.len() != 4 || year == "0000"
                })
                .unwrap_or(true),
            Some(_) => true,
        })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_object_is_one_chat_row_that_keeps_its_bytes(item in json_object(), pretty in any::<bool>()) {
        // Replies are rows of their own: keep this property about one item.
        let mut item = item;
        item.remove("replies");
        let value = Value::Object(item.clone());
        let raw = if pretty {
            serde_json::to_string_pretty(&value).unwrap()
        } else {
            value.to_string()
        };
        let mut builder = ChatMessageBuilder::new();
        let added = builder.append(&raw, &ctx("property", Some("custodian-1")));
        prop_assert_eq!(added.ok(), Some(1), "an object is always accepted");
        let batches = builder.finish();
        let rows = rows(&batches.messages);
        prop_assert_eq!(rows.len(), 1);
        let (kept, sha, errors) = &rows[0];
        prop_assert_eq!(kept, &raw, "raw_json is the item byte for byte");
        prop_assert_eq!(sha, &expected_sha(&raw));
        if has_wrong_typed_timestamp(&item) {
            prop_assert!(*errors, "a malformed timestamp is named in parse_errors: {}", raw);
        }
        let dates = batches.messages.column_by_name("date").unwrap();
        prop_assert!(!dates.is_null(0), "every row has a partition day");
    }

    #[test]
    fn any_object_is_one_mail_row_that_keeps_its_bytes(item in json_object()) {
        let raw = Value::Object(item).to_string();
        let mut builder = MailMessageBuilder::new();
        prop_assert_eq!(builder.append(&raw, &ctx("property", Some("u1"))).ok(), Some(1));
        let batch = builder.finish();
        let rows = rows(&batch);
        prop_assert_eq!(rows.len(), 1);
        prop_assert_eq!(&rows[0].0, &raw);
        prop_assert_eq!(&rows[0].1, &expected_sha(&raw));
    }

    #[test]
    fn any_text_is_refused_or_kept_never_a_panic(text in ".{0,200}") {
        let mut builder = ChatMessageBuilder::new();
        let starts_object = text.trim_start().starts_with('{');
        match builder.append(&text, &ctx("property", None)) {
            Ok(rows) => prop_assert!(rows >= 1 && starts_object, "{} rows", rows),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}

/// The docs fixtures' chat messages, one item each.
fn fixture_items() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for fixture in message_fixtures() {
        if fixture.entry.is_mail() {
            continue;
        }
        for item in items(&fixture.text) {
            out.push((fixture.entry.file.clone(), item.to_string()));
        }
    }
    out
}

/// Replaces the value at a random path of `value` with `replacement`.
fn replace_somewhere(value: &mut Value, mut choice: usize, replacement: Value) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = &keys[choice % keys.len()];
            choice /= keys.len();
            let child = map.get_mut(key).unwrap();
            if choice.is_multiple_of(3) || !matches!(child, Value::Object(_) | Value::Array(_)) {
                *child = replacement;
            } else {
                replace_somewhere(child, choice, replacement);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let len = items.len();
            replace_somewhere(&mut items[choice % len], choice / len, replacement);
        }
        other => *other = replacement,
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Real Graph items with a value somewhere replaced by anything: still one row (or
    /// more, with replies), raw_json as given.
    #[test]
    fn mutated_real_items_keep_their_row(
        pick in any::<prop::sample::Index>(),
        choice in any::<usize>(),
        replacement in json_value(),
    ) {
        let items = fixture_items();
        let (file, item) = &items[pick.index(items.len())];
        let mut value: Value = serde_json::from_str(item).unwrap();
        replace_somewhere(&mut value, choice, replacement);
        if !value.is_object() {
            return Ok(());
        }
        let raw = value.to_string();
        let mut builder = ChatMessageBuilder::new();
        let added = builder.append(&raw, &ctx(file, Some("custodian-1")));
        prop_assert!(matches!(added, Ok(n) if n >= 1), "{} refused: {:?}", file, added);
        let batches = builder.finish();
        let rows = rows(&batches.messages);
        prop_assert_eq!(&rows[0].0, &raw);
        prop_assert_eq!(&rows[0].1, &expected_sha(&raw));
    }

    /// Real Graph items with bytes flipped: refused as not JSON, or kept whole.
    #[test]
    fn real_items_with_flipped_bytes_are_refused_or_kept(
        pick in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        let items = fixture_items();
        let (file, item) = &items[pick.index(items.len())];
        let mut bytes = item.as_bytes().to_vec();
        for (at, mask) in flips {
            let at = at.index(bytes.len());
            bytes[at] ^= mask;
        }
        let Ok(text) = String::from_utf8(bytes) else { return Ok(()); };
        let mut builder = ChatMessageBuilder::new();
        if let Ok(n) = builder.append(&text, &ctx(file, None)) {
            prop_assert!(n >= 1, "{} rows", n);
            let batches = builder.finish();
            let rows = rows(&batches.messages);
            prop_assert_eq!(&rows[0].0, &text);
        }
    }

    /// The content hash is the same for the same JSON value, whatever the key order and
    /// whitespace, and differs when any value differs.
    #[test]
    fn canonical_hash_is_the_value_not_the_text(value in json_value(), other in json_value()) {
        let compact = value.to_string();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let reversed = reverse_keys(&value);
        let hash = canonical_sha256(&compact).unwrap();
        prop_assert_eq!(canonical_sha256(&pretty).unwrap(), hash);
        prop_assert_eq!(canonical_sha256(&reversed).unwrap(), hash);
        if other != value {
            prop_assert_ne!(canonical_sha256(&other.to_string()).unwrap(), hash,
                "{} and {} are different values", compact, other);
        }
    }

    /// Anything at all is hashed or refused as not JSON, never a panic.
    #[test]
    fn canonical_hash_refuses_what_is_not_json(text in "\\PC{0,64}|[\\[\\]{}\",:0-9eE.+-]{0,64}") {
        // Whatever serde_json accepts is JSON Graph could send: it must hash. (The
        // canonical reader also takes numbers serde_json cannot hold, such as 1e400,
        // since numbers are kept as written.)
        let hashed = canonical_sha256(&text);
        if serde_json::from_str::<Value>(&text).is_ok() {
            prop_assert!(hashed.is_ok(), "{:?}", text);
        }
    }

    /// HTML to text reads anything, and keeps the words of plain paragraphs.
    #[test]
    fn html_to_text_reads_anything(html in "(<[a-z/!]{0,6}[^<>]{0,8}>?|[^<>&]{0,12}|&[a-z#0-9]{0,6};?){0,40}") {
        let _ = html_to_text(&html);
    }
}

/// The JSON text of `value` with every object's keys in reverse order.
fn reverse_keys(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let members: Vec<String> = map
                .iter()
                .rev()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), reverse_keys(v)))
                .collect();
            format!("{{ {} }}", members.join(" , "))
        }
        Value::Array(items) => format!(
            "[ {} ]",
            items
                .iter()
                .map(reverse_keys)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}
