//! Finding the items in saved Graph responses: pages, single items, JSONL, and what
//! each item is (a chat message, a mail message, a user, a chat).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::value::RawValue;

use super::KindHint;
use crate::driver::ItemKind;

/// What an item in a saved response holds, with its exact bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Found<'a> {
    ChatMessage(#[serde(borrow)] &'a str),
    MailMessage(#[serde(borrow)] &'a str),
    User(#[serde(borrow)] &'a str),
    Chat(#[serde(borrow)] &'a str),
}

impl<'a> Found<'a> {
    /// What the item is, and its text.
    pub fn kind_and_text(self) -> (ItemKind, &'a str) {
        match self {
            Found::ChatMessage(raw) => (ItemKind::ChatMessage, raw),
            Found::MailMessage(raw) => (ItemKind::MailMessage, raw),
            Found::User(raw) => (ItemKind::User, raw),
            Found::Chat(raw) => (ItemKind::Chat, raw),
        }
    }
}

/// An item to archive and its position: in the page's `value` array, or its line number
/// (from 1) in a JSONL file; `None` for a file holding one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item<'a> {
    pub index: Option<usize>,
    pub found: Found<'a>,
}

/// An item that cannot be archived, and why. `index` is the item's position in the
/// page's `value` array, or its line number (from 1) in a JSONL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    pub index: Option<usize>,
    pub reason: String,
}

/// The files an ingest reads, and what the folders held that it does not.
#[derive(Debug, Default)]
pub struct Inputs {
    pub files: Vec<PathBuf>,
    /// Entries of the folders searched that are not read, each with why.
    pub passed_over: Vec<(PathBuf, &'static str)>,
}

/// Every input file under `inputs`, folders (and links to folders) searched recursively
/// for *.json, *.jsonl and *.ndjson in any case, in a stable order. Files named directly
/// are taken whatever their extension; an input that is neither a file nor a folder (a
/// pipe, a device) is an error, since it may never end.
pub fn collect_files(inputs: &[PathBuf]) -> std::io::Result<Inputs> {
    let mut found = Inputs::default();
    let mut folders_seen = HashSet::new();
    for input in inputs {
        let named =
            |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", input.display()));
        let meta = std::fs::metadata(input).map_err(named)?;
        if meta.is_dir() {
            walk(input, &mut found, &mut folders_seen)?;
        } else if meta.is_file() {
            found.files.push(input.clone());
        } else {
            return Err(named(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a file or a folder (a pipe or a device); name saved files or folders of them",
            )));
        }
    }
    Ok(found)
}

fn walk(
    dir: &Path,
    found: &mut Inputs,
    folders_seen: &mut HashSet<PathBuf>,
) -> std::io::Result<()> {
    let named =
        |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display()));
    // A folder reached twice through links is searched once, so a loop ends.
    if !folders_seen.insert(std::fs::canonicalize(dir).map_err(named)?) {
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(named)?
        .collect::<Result<_, _>>()
        .map_err(named)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(_) => {
                found
                    .passed_over
                    .push((path, "a link to nothing, or unreadable"));
                continue;
            }
        };
        if meta.is_dir() {
            walk(&path, found, folders_seen)?;
        } else if !is_json_file(&path) {
            found
                .passed_over
                .push((path, "not named *.json, *.jsonl or *.ndjson"));
        } else if meta.is_file() {
            found.files.push(path);
        } else {
            found
                .passed_over
                .push((path, "not a file (a pipe or a device)"));
        }
    }
    Ok(())
}

fn has_extension(path: &Path, extensions: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| extensions.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn is_json_file(path: &Path) -> bool {
    has_extension(path, &["json", "jsonl", "ndjson"])
}

/// Splits one file's text into the items it holds. `items` receives what can be
/// archived, `unusable` what cannot (each with its position), so nothing is dropped
/// without a word. An error means the file as a whole is not JSON or JSONL.
pub fn split_file<'a>(
    text: &'a str,
    kind: KindHint,
    items: &mut Vec<Item<'a>>,
    unusable: &mut Vec<Unusable>,
) -> Result<(), String> {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return Err("the file is empty".into());
    }
    match serde_json::from_str::<Outline>(trimmed) {
        Ok(Outline::Items(found)) => {
            for (i, item) in found.into_iter().enumerate() {
                classify(item.get(), kind, Some(i), items, unusable);
            }
            Ok(())
        }
        Ok(Outline::Object) => {
            classify(trimmed, kind, None, items, unusable);
            Ok(())
        }
        Ok(Outline::Scalar) => Err(format!(
            "not a JSON object but {}: neither a page, an array of items nor an item",
            json_kind(trimmed)
        )),
        // Not one JSON document: try one item per line.
        Err(whole_error) => {
            let lines: Vec<(usize, &str)> = trimmed
                .lines()
                .enumerate()
                .map(|(i, l)| (i + 1, l.trim()))
                .filter(|(_, l)| !l.is_empty())
                .collect();
            // JSONL only when one of its first two lines is an item of its own (the other
            // may be broken): otherwise the file is one document cut short or broken (a
            // truncated page), named once rather than line by line.
            let jsonl = lines
                .iter()
                .take(2)
                .any(|(_, l)| serde_json::from_str::<&RawValue>(l).is_ok());
            if lines.len() < 2 || !jsonl {
                return Err(format!("not valid JSON: {whole_error}"));
            }
            for (line_no, line) in lines {
                split_line(line, line_no, kind, items, unusable);
            }
            Ok(())
        }
    }
}

/// Reads one line of a JSONL file (`line_no` from 1) as one item; blank lines hold none.
pub fn split_line<'a>(
    line: &'a str,
    line_no: usize,
    kind: KindHint,
    items: &mut Vec<Item<'a>>,
    unusable: &mut Vec<Unusable>,
) {
    let line = line.trim_start_matches('\u{feff}').trim();
    if line.is_empty() {
        return;
    }
    match serde_json::from_str::<&RawValue>(line) {
        Ok(item) => classify(item.get(), kind, Some(line_no), items, unusable),
        Err(e) => unusable.push(Unusable {
            index: Some(line_no),
            reason: format!("is not valid JSON (line {line_no}): {e}"),
        }),
    }
}

/// One line of a JSONL stream, or how long a line was that exceeded the cap.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The stream has ended.
    End,
    /// A line (with its `\n`, if it had one) now in the buffer; its length in bytes.
    Read(usize),
    /// A line of this many bytes, more than the cap: skipped to its end unread, so that
    /// one runaway line (a 200 MB item, a file that is not JSONL) does not take memory
    /// past the run's budget. The buffer holds only its first bytes.
    TooLong(u64),
}

/// Reads the next line of `reader` into `line`, holding at most `max_bytes` of it.
pub fn read_capped_line(
    reader: &mut impl std::io::BufRead,
    line: &mut Vec<u8>,
    max_bytes: usize,
) -> std::io::Result<Line> {
    use std::io::{BufRead, Read};
    line.clear();
    let read = reader
        .by_ref()
        .take(max_bytes as u64 + 1)
        .read_until(b'\n', line)?;
    if read == 0 {
        return Ok(Line::End);
    }
    if read <= max_bytes || line.last() == Some(&b'\n') {
        return Ok(Line::Read(read));
    }
    // Skip the rest of the line without keeping it.
    let mut total = read as u64;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            break;
        }
        match buffer.iter().position(|&b| b == b'\n') {
            Some(at) => {
                reader.consume(at + 1);
                total += at as u64 + 1;
                break;
            }
            None => {
                let n = buffer.len();
                reader.consume(n);
                total += n as u64;
            }
        }
    }
    line.truncate(max_bytes.min(64));
    Ok(Line::TooLong(total))
}

/// Whether a file is read line by line as it streams in (JSONL), rather than whole.
pub fn is_jsonl_file(path: &Path) -> bool {
    has_extension(path, &["jsonl", "ndjson"])
}

/// A saved response's outline, read in one pass over its text: a page's or an array's
/// items (each one's exact text), or one item. What each item is, is decided after.
enum Outline<'a> {
    /// The elements of a JSON array, or of the `value` array of a page.
    Items(Vec<&'a RawValue>),
    /// An object without a `value` array: one item.
    Object,
    /// A string, number, boolean or null.
    Scalar,
}

impl<'de> serde::Deserialize<'de> for Outline<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OutlineVisitor { top: true })
    }
}

/// Reads an [`Outline`]; below the top level (`top: false`) an object's members are
/// skipped, not searched for a `value`.
struct OutlineVisitor {
    top: bool,
}

impl<'de> serde::de::Visitor<'de> for OutlineVisitor {
    type Value = Outline<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Graph response: a page, an array of items, or an item")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            items.push(item);
        }
        Ok(Outline::Items(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // As a map of keys would have it, the last `value` counts.
        let mut page = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if self.top && key == "value" {
                page = map.next_value::<ValueMember>()?.0;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(page.map_or(Outline::Object, Outline::Items))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Outline::Scalar)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Outline::Scalar)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Outline::Scalar)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Outline::Scalar)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Outline::Scalar)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Outline::Scalar)
    }
}

/// An object's `value` member: its elements when it is an array (a page), else nothing
/// (an item that happens to have a `value` property).
struct ValueMember<'a>(Option<Vec<&'a RawValue>>);

impl<'de> serde::Deserialize<'de> for ValueMember<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(ValueMember(
            match deserializer.deserialize_any(OutlineVisitor { top: false })? {
                Outline::Items(items) => Some(items),
                Outline::Object | Outline::Scalar => None,
            },
        ))
    }
}

fn object_keys(text: &str) -> Result<HashMap<Cow<'_, str>, &RawValue>, serde_json::Error> {
    serde_json::from_str(text)
}

/// Decides what the item `text` (one JSON value, checked) is.
fn classify<'a>(
    text: &'a str,
    kind: KindHint,
    index: Option<usize>,
    items: &mut Vec<Item<'a>>,
    unusable: &mut Vec<Unusable>,
) {
    // With the kind given, the builder reads the object itself; no need to read its keys
    // here too.
    let given = match kind {
        KindHint::Chat => Some(Found::ChatMessage(text)),
        KindHint::Mail => Some(Found::MailMessage(text)),
        KindHint::Auto => None,
    };
    if let Some(found) = given {
        if text.starts_with('{') {
            items.push(Item { index, found });
        } else {
            unusable.push(Unusable {
                index,
                reason: format!("is not a JSON object but {}", json_kind(text)),
            });
        }
        return;
    }
    let keys = match object_keys(text) {
        Ok(keys) => keys,
        Err(_) => {
            unusable.push(Unusable {
                index,
                reason: format!("is not a JSON object but {}", json_kind(text)),
            });
            return;
        }
    };
    match recognise(&keys) {
        Recognised::Found(found) => items.push(Item {
            index,
            found: found.with(text),
        }),
        Recognised::Nested(key) => {
            let nested = keys[key];
            classify(nested.get(), kind, index, items, unusable)
        }
        Recognised::Unknown(reason) => unusable.push(Unusable { index, reason }),
    }
}

#[derive(Clone, Copy)]
enum Kind {
    ChatMessage,
    MailMessage,
    User,
    Chat,
}

impl Kind {
    fn with(self, raw: &str) -> Found<'_> {
        match self {
            Kind::ChatMessage => Found::ChatMessage(raw),
            Kind::MailMessage => Found::MailMessage(raw),
            Kind::User => Found::User(raw),
            Kind::Chat => Found::Chat(raw),
        }
    }
}

enum Recognised {
    Found(Kind),
    /// A wrapper whose property holds the message (a pinned message's `message`).
    Nested(&'static str),
    Unknown(String),
}

const CHAT_MESSAGE_KEYS: &[&str] = &[
    "messageType",
    "chatId",
    "channelIdentity",
    "replyToId",
    "reactions",
    "mentions",
    "policyViolation",
    "eventDetail",
    "messageHistory",
];
const MAIL_MESSAGE_KEYS: &[&str] = &[
    "@removed",
    "receivedDateTime",
    "sentDateTime",
    "toRecipients",
    "internetMessageId",
    "conversationId",
    "parentFolderId",
    "isRead",
    "sender",
    "internetMessageHeaders",
    "bodyPreview",
    "ccRecipients",
    "bccRecipients",
    "hasAttachments",
    "isDraft",
    "inferenceClassification",
    "uniqueBody",
];

/// Decides what an item is: by `@odata.type` when Graph sent one, else by the
/// properties only that type has.
fn recognise(keys: &HashMap<Cow<'_, str>, &RawValue>) -> Recognised {
    if let Some(odata_type) = keys
        .get("@odata.type")
        .and_then(|t| serde_json::from_str::<Cow<str>>(t.get()).ok())
    {
        let odata_type = odata_type.trim_start_matches('#').to_ascii_lowercase();
        match odata_type.as_str() {
            "microsoft.graph.chatmessage" => return Recognised::Found(Kind::ChatMessage),
            "microsoft.graph.user" => return Recognised::Found(Kind::User),
            "microsoft.graph.chat" => return Recognised::Found(Kind::Chat),
            t if t == "microsoft.graph.message"
                || t.starts_with("microsoft.graph.eventmessage") =>
            {
                return Recognised::Found(Kind::MailMessage);
            }
            _ => {}
        }
    }
    let has = |names: &[&str]| names.iter().any(|n| keys.contains_key(*n));
    if has(MAIL_MESSAGE_KEYS) {
        return Recognised::Found(Kind::MailMessage);
    }
    if has(CHAT_MESSAGE_KEYS) {
        return Recognised::Found(Kind::ChatMessage);
    }
    if has(&["chatType"]) {
        return Recognised::Found(Kind::Chat);
    }
    if has(&["userPrincipalName"]) {
        return Recognised::Found(Kind::User);
    }
    if keys
        .get("message")
        .is_some_and(|m| m.get().starts_with('{'))
    {
        return Recognised::Nested("message");
    }
    if has(&["body", "from", "attachments"]) {
        return Recognised::Found(Kind::ChatMessage);
    }
    if has(&["subscriptionId", "changeType"]) && !keys.contains_key("body") {
        return Recognised::Unknown(
            "is a change notification, not message content (decrypt `encryptedContent` and \
             ingest the message it holds)"
                .into(),
        );
    }
    let mut names: Vec<&str> = keys.keys().map(|k| k.as_ref()).collect();
    names.sort_unstable();
    names.truncate(8);
    Recognised::Unknown(format!(
        "is neither a chatMessage, a mail message, a user nor a chat (keys: {}); pass --kind \
         chat or --kind mail if you know",
        names.join(", ")
    ))
}

fn json_kind(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> (Vec<Found<'_>>, Vec<Unusable>) {
        let mut items = Vec::new();
        let mut unusable = Vec::new();
        split_file(text, KindHint::Auto, &mut items, &mut unusable).unwrap();
        let items = items.into_iter().map(|item| item.found).collect();
        (items, unusable)
    }

    #[test]
    fn a_page_yields_its_items_byte_for_byte() {
        let text = r#"{"@odata.nextLink":"x","value":[ {"id":"1", "messageType":"message"},{"id":"2","receivedDateTime":"2024-01-01T00:00:00Z"} ]}"#;
        let (items, unusable) = split(text);
        assert_eq!(
            items,
            vec![
                Found::ChatMessage(r#"{"id":"1", "messageType":"message"}"#),
                Found::MailMessage(r#"{"id":"2","receivedDateTime":"2024-01-01T00:00:00Z"}"#),
            ]
        );
        assert!(unusable.is_empty());
    }

    #[test]
    fn jsonl_lines_are_items_and_bad_lines_are_named() {
        let text = "{\"id\":\"1\",\"chatId\":\"c\"}\n\n{\"id\":\"2\",\"chatId\":\"c\"}\nnot json\n";
        let (items, unusable) = split(text);
        assert_eq!(items.len(), 2);
        assert_eq!(unusable.len(), 1);
        assert_eq!(unusable[0].index, Some(4));
        assert!(
            unusable[0].reason.contains("not valid JSON (line 4)"),
            "{:?}",
            unusable[0]
        );
    }

    #[test]
    fn jsonl_whose_first_line_is_broken_is_still_read_line_by_line() {
        let text =
            "{\"id\":\"1\",\n{\"id\":\"2\",\"chatId\":\"c\"}\n{\"id\":\"3\",\"chatId\":\"c\"}\n";
        let (mut items, mut unusable) = (Vec::new(), Vec::new());
        split_file(text, KindHint::Chat, &mut items, &mut unusable).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(unusable.len(), 1);
        assert_eq!(unusable[0].index, Some(1));
    }

    #[test]
    fn a_page_cut_short_is_named_once_with_where_it_ends() {
        let page = "{\n  \"value\": [\n    {\"id\": \"1\"},\n    {\"id\": \"2\"},\n    {\"id\"";
        let (mut items, mut unusable) = (Vec::new(), Vec::new());
        let error = split_file(page, KindHint::Chat, &mut items, &mut unusable).unwrap_err();
        assert!(error.starts_with("not valid JSON: EOF"), "{error}");
        assert!(error.contains("line 5"), "{error}");
        assert!(items.is_empty() && unusable.is_empty(), "{unusable:?}");
    }

    #[test]
    fn folders_are_searched_through_links_once_and_what_is_not_read_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("in");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        for name in ["a.json", "UPPER.JSON", "sub/b.NDJSON", "notes.txt"] {
            std::fs::write(root.join(name), "{}").unwrap();
        }
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("c.jsonl"), "{}").unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("linked")).unwrap();
        std::os::unix::fs::symlink(&root, root.join("sub/loop")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone"), root.join("dangling.json")).unwrap();
        let fifo = root.join("pipe.json");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );

        let found = collect_files(std::slice::from_ref(&root)).unwrap();
        let names: Vec<_> = found
            .files
            .iter()
            .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            ["UPPER.JSON", "a.json", "linked/c.jsonl", "sub/b.NDJSON"]
        );
        let passed: Vec<_> = found
            .passed_over
            .iter()
            .map(|(f, why)| (f.file_name().unwrap().to_str().unwrap(), *why))
            .collect();
        assert_eq!(
            passed,
            [
                ("dangling.json", "a link to nothing, or unreadable"),
                ("notes.txt", "not named *.json, *.jsonl or *.ndjson"),
                ("pipe.json", "not a file (a pipe or a device)"),
            ]
        );
        let error = collect_files(std::slice::from_ref(&fifo)).unwrap_err();
        assert!(
            error.to_string().contains("not a file or a folder"),
            "{error}"
        );
    }

    #[test]
    fn removals_users_chats_and_pinned_messages_are_recognised() {
        let text = r#"{"value":[
            {"id":"m1","@removed":{"reason":"deleted"}},
            {"id":"u1","userPrincipalName":"a@b"},
            {"id":"c1","chatType":"group"},
            {"id":"p1","message":{"id":"9","messageType":"message"}}
        ]}"#;
        let (items, unusable) = split(text);
        assert!(unusable.is_empty(), "{unusable:?}");
        assert!(matches!(items[0], Found::MailMessage(_)));
        assert!(matches!(items[1], Found::User(_)));
        assert!(matches!(items[2], Found::Chat(_)));
        assert_eq!(
            items[3],
            Found::ChatMessage(r#"{"id":"9","messageType":"message"}"#)
        );
    }

    #[test]
    fn what_is_not_a_message_is_reported_with_its_position() {
        let text = r#"{"value":[{"subscriptionId":"s","changeType":"created"}, 42]}"#;
        let (items, unusable) = split(text);
        assert!(items.is_empty());
        assert_eq!(unusable.len(), 2);
        assert_eq!(unusable[0].index, Some(0));
        assert!(unusable[0].reason.contains("change notification"));
        assert_eq!(unusable[1].index, Some(1));
        assert!(unusable[1].reason.contains("not a JSON object"));
    }

    #[test]
    fn a_given_kind_takes_every_object_and_names_the_rest() {
        let text =
            r#"{"value":[{"id":"1"}, {"subscriptionId":"s","changeType":"created"}, [1], "x"]}"#;
        let mut items = Vec::new();
        let mut unusable = Vec::new();
        split_file(text, KindHint::Mail, &mut items, &mut unusable).unwrap();
        assert_eq!(
            items,
            vec![
                Item {
                    index: Some(0),
                    found: Found::MailMessage(r#"{"id":"1"}"#)
                },
                Item {
                    index: Some(1),
                    found: Found::MailMessage(r#"{"subscriptionId":"s","changeType":"created"}"#)
                },
            ]
        );
        let positions: Vec<Option<usize>> = unusable.iter().map(|u| u.index).collect();
        assert_eq!(positions, [Some(2), Some(3)]);
        assert!(unusable[0].reason.contains("an array"), "{unusable:?}");
        assert!(unusable[1].reason.contains("a string"), "{unusable:?}");
    }

    #[test]
    fn lines_past_the_cap_are_skipped_whole_and_measured() {
        let text = format!(
            "{{\"id\":1}}\n{}\n{{\"id\":3}}\n{}",
            "x".repeat(100),
            "y".repeat(40)
        );
        let mut reader = std::io::BufReader::with_capacity(16, text.as_bytes());
        let mut line = Vec::new();
        let mut seen = Vec::new();
        loop {
            match read_capped_line(&mut reader, &mut line, 32).unwrap() {
                Line::End => break,
                Line::Read(n) => {
                    seen.push(format!("{n}:{}", String::from_utf8_lossy(&line).trim()))
                }
                Line::TooLong(n) => seen.push(format!("too long {n}")),
            }
        }
        assert_eq!(
            seen,
            [
                "9:{\"id\":1}",
                "too long 101",
                "9:{\"id\":3}",
                "too long 40"
            ]
        );
    }

    #[test]
    fn a_broken_file_is_an_error() {
        let mut items = Vec::new();
        let mut unusable = Vec::new();
        let err =
            split_file("{\"value\": [", KindHint::Auto, &mut items, &mut unusable).unwrap_err();
        assert!(err.contains("not valid JSON"), "{err}");
        let err = split_file("42", KindHint::Auto, &mut items, &mut unusable).unwrap_err();
        assert!(err.contains("not a JSON object but a number"), "{err}");
    }

    #[test]
    fn an_object_whose_value_is_not_an_array_is_one_item_and_the_last_value_counts() {
        let item = r#"{"id":"1","messageType":"message","value":{"value":[{"chatId":"c"}]}}"#;
        let (items, unusable) = split(item);
        assert_eq!(items, vec![Found::ChatMessage(item)]);
        assert!(unusable.is_empty());
        let (items, _) = split(r#"{"value":[{"id":"1","chatId":"c"}],"value":[]}"#);
        assert!(
            items.is_empty(),
            "a repeated `value` replaces the earlier one"
        );
        let (items, _) = split(r#"[{"id":"1","chatId":"c"},{"id":"2","chatId":"c"}]"#);
        assert_eq!(items.len(), 2, "an array's elements are the items");
    }
}
