//! Row-level promises: the version hash, coercions, nulls, removals, items without ids,
//! refused non-objects, custodians, and readable body text.

mod common;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Date32Type, Int32Type, TimestampMicrosecondType};
use common::*;
use transform::{
    ChatMessageBuilder, ItemError, MailMessageBuilder, canonical_sha256, html_to_text,
};

fn sha(raw: &str) -> [u8; 32] {
    canonical_sha256(raw).unwrap()
}

#[test]
fn same_json_value_hashes_the_same() {
    let a = r#"{"id":"1","body":{"content":"caf\u00e9 \"x\"","contentType":"text"},"n":[1,2.50,-3e2],"t":true}"#;
    let b = "{ \"t\" : true,\n \"n\": [ 1.0, 2.5, -300 ],\t\"body\":{\"contentType\":\"text\",\"content\":\"café \\\"x\\\"\"},\"id\":\"\\u0031\"}";
    assert_eq!(sha(a), sha(b));
    assert_eq!(sha(r#""\/""#), sha(r#""/""#));
    // RFC 8785 prints numbers as ECMAScript does: one value, one spelling.
    assert_eq!(sha("[1e2, 0.5, -0]"), sha("[100, 5E-1, 0]"));
}

#[test]
fn any_changed_value_hashes_differently() {
    let base = r#"{"id":"1","n":[1,2],"s":"a","t":true,"z":null}"#;
    let changed = [
        r#"{"id":"2","n":[1,2],"s":"a","t":true,"z":null}"#,
        r#"{"id":"1","n":[2,1],"s":"a","t":true,"z":null}"#,
        r#"{"id":"1","n":[1,2],"s":"a ","t":true,"z":null}"#,
        r#"{"id":"1","n":[1,2],"s":"a","t":false,"z":null}"#,
        r#"{"id":"1","n":[1,2],"s":"a","t":true}"#,
        r#"{"id":"1","n":[1,2.5],"s":"a","t":true,"z":null}"#,
        r#"{"id":"1","n":[1,2],"s":"a","t":true,"z":""}"#,
        r#"{"id":"1","n":[1,[2]],"s":"a","t":true,"z":null}"#,
    ];
    for c in changed {
        assert_ne!(sha(base), sha(c), "{c}");
    }
    assert!(canonical_sha256("{\"a\":").is_err());
}

#[test]
fn graph_shapes_are_coerced_and_nulls_are_nulls() {
    let mut b = ChatMessageBuilder::new();
    let c = ctx("test", None);
    // numbers where strings are usual, a numeric string where an int is usual, 7 fraction
    // digits and an offset, missing and null properties
    let item = r#"{"id":1612289992105,"chatId":null,"createdDateTime":"2021-02-02T10:30:34.9097561-08:00",
        "mentions":[{"id":"3","mentionText":42,"mentioned":{"user":{"id":"u","displayName":"A"}}}],
        "body":{"contentType":"text","content":"hi"},"attachments":[{"id":"a","content":"{\"type\":\"AdaptiveCard\"}"}]}"#;
    assert_eq!(b.append(item, &c).unwrap(), 1);
    let batch = b.finish().messages;
    assert_eq!(
        batch
            .column_by_name("id")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "1612289992105"
    );
    assert!(
        batch.column_by_name("chat_id").unwrap().is_null(0),
        "null stays null"
    );
    assert!(
        batch.column_by_name("subject").unwrap().is_null(0),
        "missing is null"
    );
    let created = batch
        .column_by_name("created_date_time")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    assert_eq!(created.value(0), 1_612_290_634_909_756);
    let date = batch
        .column_by_name("date")
        .unwrap()
        .as_primitive::<Date32Type>();
    assert_eq!(date.value(0), 18_660, "UTC day 2021-02-02");
    let mentions = list_items(&batch, "mentions", 0);
    assert_eq!(
        mentions
            .column_by_name("id")
            .unwrap()
            .as_primitive::<Int32Type>()
            .value(0),
        3
    );
    assert_eq!(
        mentions
            .column_by_name("mention_text")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "42"
    );
    let attachments = batch
        .column_by_name("attachments")
        .unwrap()
        .as_list::<i32>()
        .value(0);
    let content = attachments
        .as_struct()
        .column_by_name("content")
        .unwrap()
        .as_string::<i32>()
        .value(0)
        .to_string();
    assert_eq!(
        content, r#"{"type":"AdaptiveCard"}"#,
        "card JSON stays a string"
    );
    let errors = batch
        .column_by_name("parse_errors")
        .unwrap()
        .as_list::<i32>();
    assert_eq!(errors.value(0).len(), 0);
}

#[test]
fn malformed_values_are_recorded_and_the_row_kept() {
    let mut b = ChatMessageBuilder::new();
    let item = r#"{"id":"m1","createdDateTime":"2021-03-1706:47:05.123Z","lastModifiedDateTime":"2021-03-17T06:47:05.123Z","mentions":[{"id":"x"}],"from":"nobody"}"#;
    b.append(item, &ctx("test", None)).unwrap();
    let batch = b.finish().messages;
    assert!(
        batch
            .column_by_name("created_date_time")
            .unwrap()
            .is_null(0)
    );
    let errors = list_items(&batch, "parse_errors", 0);
    let fields: Vec<&str> = (0..errors.len())
        .map(|i| {
            errors
                .column_by_name("field")
                .unwrap()
                .as_string::<i32>()
                .value(i)
        })
        .collect();
    assert_eq!(
        fields,
        ["createdDateTime", "mentions[0].id", "from", "date"]
    );
    let message = errors
        .column_by_name("message")
        .unwrap()
        .as_string::<i32>()
        .value(3);
    assert!(message.contains("lastModifiedDateTime"), "{message}");
    let date = batch
        .column_by_name("date")
        .unwrap()
        .as_primitive::<Date32Type>();
    assert_eq!(
        date.value(0),
        18_703,
        "fell back to lastModifiedDateTime's day"
    );
}

#[test]
fn only_what_is_not_a_json_object_is_refused_and_then_nothing_is_appended() {
    let mut b = ChatMessageBuilder::new();
    let c = ctx("test", Some("u1"));
    for (raw, expect) in [
        ("[1]", "JSON an array, not an object"),
        ("\"m1\"", "JSON a string, not an object"),
        ("null", "JSON null, not an object"),
        ("{\"id\":", "not valid JSON"),
        ("{\"id\":\"a\"} {}", "not valid JSON"),
    ] {
        let e = b.append(raw, &c).unwrap_err();
        assert!(e.to_string().contains(expect), "{raw}: {e}");
        assert!(
            matches!(e, ItemError::NotJson { .. } | ItemError::NotObject { .. }),
            "{raw}: {e:?}"
        );
    }
    assert_eq!(b.len(), 0);
    let batches = b.finish();
    assert_eq!(batches.messages.num_rows(), 0);
    assert_eq!(batches.custodians.num_rows(), 0);
}

/// The `parse_errors` of row `row`, as (field, value, message).
fn parse_errors(
    batch: &arrow::record_batch::RecordBatch,
    row: usize,
) -> Vec<(String, String, String)> {
    let list = batch
        .column_by_name("parse_errors")
        .unwrap()
        .as_list::<i32>()
        .value(row);
    let entries = list.as_struct();
    let text = |name: &str, i: usize| {
        entries
            .column_by_name(name)
            .unwrap()
            .as_string::<i32>()
            .value(i)
            .to_string()
    };
    (0..entries.len())
        .map(|i| (text("field", i), text("value", i), text("message", i)))
        .collect()
}

#[test]
fn objects_without_a_usable_id_are_rows_with_a_null_id_and_a_recorded_problem() {
    let mut b = ChatMessageBuilder::new();
    let c = ctx("test", Some("u1"));
    let items = [
        (
            r#"{"x":1,"createdDateTime":"2024-05-01T10:00:00Z"}"#,
            "",
            "`id` is missing",
        ),
        (
            r#"{"id":null,"createdDateTime":"2024-05-01T10:00:00Z"}"#,
            "null",
            "`id` is null",
        ),
        (
            r#"{"id":" ","createdDateTime":"2024-05-01T10:00:00Z"}"#,
            "\" \"",
            "`id` is empty",
        ),
        (
            r#"{"id":{"a":1},"createdDateTime":"2024-05-01T10:00:00Z"}"#,
            r#"{"a":1}"#,
            "`id` is not a string",
        ),
        (
            r#"{"id":[],"createdDateTime":"2024-05-01T10:00:00Z"}"#,
            "[]",
            "`id` is not a string",
        ),
    ];
    for (raw, _, _) in items {
        assert_eq!(b.append(raw, &c).unwrap(), 1, "{raw}");
    }
    let batches = b.finish();
    let m = &batches.messages;
    assert_eq!(m.num_rows(), items.len());
    let id = m.column_by_name("id").unwrap();
    let custodian_id = batches.custodians.column_by_name("id").unwrap();
    let raw_json = m.column_by_name("raw_json").unwrap().as_string::<i32>();
    let sha = m
        .column_by_name("content_sha256")
        .unwrap()
        .as_string::<i32>();
    let date = m
        .column_by_name("date")
        .unwrap()
        .as_primitive::<Date32Type>();
    for (row, (raw, value, reason)) in items.iter().enumerate() {
        assert!(id.is_null(row), "{raw}: id is null");
        assert!(custodian_id.is_null(row), "{raw}: custodian id is null");
        assert_eq!(raw_json.value(row), *raw);
        assert_eq!(
            sha.value(row),
            hex(sha256_of(raw)),
            "{raw}: identified by content"
        );
        assert_eq!(date.value(row), 19_844, "{raw}: dated by createdDateTime");
        let errors = parse_errors(m, row);
        assert_eq!(errors.len(), 1, "{raw}: {errors:?}");
        let (field, found, message) = &errors[0];
        assert_eq!((field.as_str(), found.as_str()), ("id", *value), "{raw}");
        assert!(
            message.starts_with(reason) && message.contains("null id"),
            "{message}"
        );
    }
    // Without any date either, the row is still kept, dated the day it was fetched.
    let mut b = MailMessageBuilder::new();
    b.append(r#"{"subject":"no id, no date"}"#, &c).unwrap();
    let mail = b.finish();
    assert!(mail.column_by_name("id").unwrap().is_null(0));
    let date = mail
        .column_by_name("date")
        .unwrap()
        .as_primitive::<Date32Type>();
    assert_eq!(date.value(0), 20_090, "fetched_at's day");
    let fields: Vec<String> = parse_errors(&mail, 0).into_iter().map(|e| e.0).collect();
    assert_eq!(fields, ["id", "date"]);
}

#[test]
fn replies_without_ids_are_rows_and_replies_that_are_not_objects_stay_in_the_parent() {
    let mut b = ChatMessageBuilder::new();
    let c = ctx("test", None);
    let item = r#"{"id":"p","replies":[{"body":{"content":"no id"}},3,{"id":"r2"}]}"#;
    assert_eq!(b.append(item, &c).unwrap(), 3);
    let m = b.finish().messages;
    let id = m.column_by_name("id").unwrap().as_string::<i32>();
    assert_eq!(id.value(0), "p");
    assert!(id.is_null(1));
    assert_eq!(id.value(2), "r2");
    let raw_json = m.column_by_name("raw_json").unwrap().as_string::<i32>();
    assert_eq!(
        raw_json.value(0),
        item,
        "the parent keeps every reply in raw_json"
    );
    assert_eq!(raw_json.value(1), r#"{"body":{"content":"no id"}}"#);
    let parent = parse_errors(&m, 0);
    assert_eq!(parent.len(), 2, "{parent:?}");
    assert_eq!(
        (parent[0].0.as_str(), parent[0].1.as_str()),
        ("replies[1]", "3")
    );
    assert!(parent[0].2.contains("found a number"), "{parent:?}");
    assert_eq!(parent[1].0, "date");
    assert_eq!(parse_errors(&m, 1)[0].0, "id");
}

fn sha256_of(raw: &str) -> [u8; 32] {
    canonical_sha256(raw).unwrap()
}

fn hex(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn custodian_rows_follow_the_message_rows() {
    let mut b = ChatMessageBuilder::new();
    let item = r#"{"id":"m1","chatId":"19:c@thread.v2","createdDateTime":"2024-05-01T10:00:00Z","lastModifiedDateTime":"2024-05-02T10:00:00Z"}"#;
    b.append(item, &ctx("s", Some("user-a"))).unwrap();
    b.append(item, &ctx("s", Some("user-b"))).unwrap();
    b.append(item, &ctx("s", None)).unwrap();
    let batches = b.finish();
    assert_eq!(batches.messages.num_rows(), 3);
    let c = &batches.custodians;
    assert_eq!(c.num_rows(), 2);
    let users = c
        .column_by_name("custodian_user_id")
        .unwrap()
        .as_string::<i32>();
    assert_eq!((users.value(0), users.value(1)), ("user-a", "user-b"));
    assert_eq!(
        c.column_by_name("chat_id")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "19:c@thread.v2"
    );
    let sha = c
        .column_by_name("content_sha256")
        .unwrap()
        .as_string::<i32>()
        .value(0);
    assert_eq!(
        sha,
        batches
            .messages
            .column_by_name("content_sha256")
            .unwrap()
            .as_string::<i32>()
            .value(0)
    );
    assert_eq!(sha.len(), 64);
    assert_eq!(c.schema(), transform::chat_message_custodians_schema());
    assert_eq!(batches.messages.schema(), transform::chat_messages_schema());
    assert_eq!(
        batches.messages.schema().fields().last().unwrap().name(),
        "date"
    );
}

#[test]
fn mail_removals_are_rows() {
    let mut b = MailMessageBuilder::new();
    let c = ctx("mail", Some("user-1"));
    b.append(r#"{"id":"m1","receivedDateTime":"2024-01-01T09:00:00Z","body":{"contentType":"html","content":"<html><body><p>Hi &amp; bye</p></body></html>"}}"#, &c).unwrap();
    let removal = r#"{"id":"m1","@removed":{"reason":"deleted"}}"#;
    b.append(removal, &c).unwrap();
    let batch = b.finish();
    assert_eq!(batch.schema(), transform::mail_messages_schema());
    let removed = batch.column_by_name("removed").unwrap().as_boolean();
    assert!(!removed.value(0) && removed.value(1));
    assert_eq!(
        batch
            .column_by_name("removed_reason")
            .unwrap()
            .as_string::<i32>()
            .value(1),
        "deleted"
    );
    assert_eq!(
        batch
            .column_by_name("raw_json")
            .unwrap()
            .as_string::<i32>()
            .value(1),
        removal
    );
    let date = batch
        .column_by_name("date")
        .unwrap()
        .as_primitive::<Date32Type>();
    assert_eq!(date.value(0), 19_723, "receivedDateTime's day");
    assert_eq!(
        date.value(1),
        20_090,
        "a removal is dated the day it was seen (fetched_at)"
    );
    assert_eq!(
        batch
            .column_by_name("body_text")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "Hi & bye"
    );
    let errors = batch
        .column_by_name("parse_errors")
        .unwrap()
        .as_list::<i32>();
    assert_eq!(errors.value(1).len(), 0, "a removal is not malformed");
}

fn fixture_body_text(file: &str) -> Vec<String> {
    let fixtures = message_fixtures();
    let fx = fixtures.iter().find(|f| f.entry.file == file).unwrap();
    let mut b = ChatMessageBuilder::new();
    for item in items(&fx.text) {
        b.append(item, &ctx(file, None)).unwrap();
    }
    let batch = b.finish().messages;
    let col = batch
        .column_by_name("body_text")
        .unwrap()
        .as_string::<i32>();
    (0..col.len()).map(|i| col.value(i).to_string()).collect()
}

#[test]
fn body_text_keeps_mentions_quotes_attachments_emoji_and_drops_system_markup() {
    let mention = fixture_body_text("v1.0/chatmessage-post-2.json");
    assert!(mention[0].contains("Jane Smith"), "{mention:?}");
    assert!(!mention[0].contains("<at"), "{mention:?}");

    let card = fixture_body_text("v1.0/chatmessage-post-6.json");
    assert!(card[0].contains("[attachment: "), "{card:?}");

    let file = fixture_body_text("v1.0/chatmessage-post-4.json");
    assert!(
        file[0].contains("[attachment: ") && file[0].contains('.'),
        "named after the attachment: {file:?}"
    );

    let emoji = fixture_body_text("v1.0/chatmessage-get-4.json");
    assert!(
        emoji[0].contains('👀') && emoji[0].contains("microsoft_teams"),
        "{emoji:?}"
    );

    let system = fixture_body_text("concepts/concept-system-messages-5.json");
    assert_eq!(system, [""]);

    let quote = html_to_text(
        r#"<div><blockquote itemtype="http://schema.skype.com/Reply" itemid="1"><strong itemprop="mri">Ada Berg</strong><p itemprop="preview">is it ready?</p></blockquote><p>yes</p></div>"#,
    );
    assert_eq!(quote, "> Ada Berg\n> is it ready?\nyes");
    assert_eq!(html_to_text("plain text stays"), "plain text stays");
}

#[test]
fn builders_are_send() {
    fn send<T: Send>() {}
    send::<ChatMessageBuilder>();
    send::<MailMessageBuilder>();
    send::<transform::DirectoryUserBuilder>();
    send::<transform::DirectoryChatBuilder>();
}

/// Replaces the leaf at `target` (in walk order) by `with`; returns whether it was found.
fn replace_leaf(
    v: &mut serde_json::Value,
    target: usize,
    seen: &mut usize,
    with: &serde_json::Value,
) -> bool {
    match v {
        serde_json::Value::Object(map) => map
            .values_mut()
            .any(|c| replace_leaf(c, target, seen, with)),
        serde_json::Value::Array(items) => items
            .iter_mut()
            .any(|c| replace_leaf(c, target, seen, with)),
        leaf => {
            *seen += 1;
            if *seen - 1 == target {
                *leaf = with.clone();
                return true;
            }
            false
        }
    }
}

#[test]
fn any_value_of_any_type_anywhere_keeps_the_row_and_never_panics() {
    let replacements = [
        serde_json::json!(12345),
        serde_json::json!(-1.5e300),
        serde_json::json!("x\u{e9}\"<p>&amp;"),
        serde_json::json!({"a": [1, {"b": null}]}),
        serde_json::json!([1, "2", null]),
        serde_json::json!(true),
    ];
    let fixtures = message_fixtures();
    let mut appended = 0;
    for fx in &fixtures {
        for item in items(&fx.text) {
            let value: serde_json::Value = serde_json::from_str(item).unwrap();
            let mut b = ChatMessageBuilder::new();
            let mut m = MailMessageBuilder::new();
            for target in 0.. {
                let mut found = false;
                for with in &replacements {
                    let mut v = value.clone();
                    let mut seen = 0;
                    found = replace_leaf(&mut v, target, &mut seen, with);
                    if !found {
                        break;
                    }
                    let raw = serde_json::to_string(&v).unwrap();
                    let result = if fx.entry.is_mail() {
                        m.append(&raw, &ctx("fuzz", None))
                    } else {
                        b.append(&raw, &ctx("fuzz", Some("u")))
                    };
                    match result {
                        Ok(n) => appended += n,
                        Err(e) => panic!("{}: an object was refused: {e}", fx.entry.file),
                    }
                }
                if !found {
                    break;
                }
            }
            // Truncated items are refused with an error, never a panic.
            for cut in (1..item.len()).step_by(item.len() / 20 + 1) {
                if item.is_char_boundary(cut) {
                    assert!(b.append(&item[..cut], &ctx("fuzz", None)).is_err());
                }
            }
            let batches = b.finish();
            assert_eq!(batches.messages.num_rows(), batches.custodians.num_rows());
            m.finish();
        }
    }
    assert!(appended > 10_000, "{appended}");
}
