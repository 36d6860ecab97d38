//! An item's partition day, read without building its row.

use crate::json::{ObjectMembers, StringValue, unescape};
use crate::time;

/// Reads the day (since 1970-01-01, UTC) of the partition an item's row goes to: the first
/// top-level timestamp of `keys` that parses, as the builders choose it.
///
/// It reads the item's top-level members only as far as it must: the first occurrence of
/// the first key, if it holds a usable timestamp, ends the read (Graph writes
/// `createdDateTime` among a message's first members). So it does not check the rest of
/// the item; callers that need the item checked parse it in full anyway.
///
/// It serves callers that group items by day before appending them; the row's own `date`
/// column stays the authority (an item whose timestamps are all unusable answers `None`,
/// and its builder then falls back to the fetch time and records why).
#[derive(Default, Debug)]
pub struct DayReader {
    /// Per key: the first occurrence's string value, or `None` inside when not a string.
    firsts: Vec<Option<Option<StringValue>>>,
}

/// The timestamps that decide a chat message's partition, in order of preference.
pub const CHAT_MESSAGE_DAY_KEYS: &[&str] = &["createdDateTime", "lastModifiedDateTime"];
/// The timestamp that decides a mail message's partition.
pub const MAIL_MESSAGE_DAY_KEYS: &[&str] = &["receivedDateTime"];

impl DayReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// The partition day of `raw` (one JSON object) by `keys`, if any of them holds a
    /// timestamp.
    pub fn day(&mut self, raw: &str, keys: &[&str]) -> Option<i32> {
        self.firsts.clear();
        self.firsts.resize(keys.len(), None);
        for member in ObjectMembers::new(raw) {
            for (k, key) in keys.iter().enumerate() {
                if self.firsts[k].is_some() || !member.key_is(raw, key) {
                    continue;
                }
                self.firsts[k] = Some(member.string.clone());
                if k == 0
                    && let Some(day) = day_of(raw, &member.string)
                {
                    return Some(day);
                }
            }
        }
        self.firsts
            .iter()
            .find_map(|first| day_of(raw, first.as_ref()?))
    }
}

/// The UTC day of a member's value, if it is a string holding a timestamp.
fn day_of(raw: &str, string: &Option<StringValue>) -> Option<i32> {
    let string = string.as_ref()?;
    let text = &raw[string.text.clone()];
    let micros = if string.escaped {
        time::parse_micros(&unescape(text)).ok()?
    } else {
        time::parse_micros(text).ok()?
    };
    Some(time::day_of(micros))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{Tape, Tok};

    /// The day as a full parse finds it: the first occurrence of each key, in order.
    fn parsed_day(raw: &str, keys: &[&str]) -> Option<i32> {
        let mut tape = Tape::default();
        tape.parse(raw).ok()?;
        if tape.nodes.first()?.tok != Tok::Object {
            return None;
        }
        keys.iter().find_map(|key| {
            let value = tape.get(raw, 0, key)?;
            if tape.nodes[value].tok != Tok::Str {
                return None;
            }
            let micros = time::parse_micros(&tape.str(raw, value)).ok()?;
            Some(time::day_of(micros))
        })
    }

    #[test]
    fn reading_as_far_as_needed_finds_the_day_a_full_parse_finds() {
        let cases = [
            r#"{"lastModifiedDateTime":"1970-01-04T00:00:00Z","createdDateTime":"1970-01-02T00:00:00Z"}"#,
            r#"{"createdDateTime":"bad","createdDateTime":"1970-01-02T00:00:00Z","lastModifiedDateTime":"1970-01-04T00:00:00Z"}"#,
            r#"{"created\u0044ateTime":"1970-01-02T00:00:00\u005A"}"#,
            r#"{"a":{"x":"}]\"{","y":[1,{"z":null}]},"b":[true,false,-1.5e3],"createdDateTime":"1970-01-02T00:00:00Z"}"#,
            r#"{"createdDateTime":null,"lastModifiedDateTime":"1970-01-04T00:00:00Z"}"#,
            r#"{"receivedDateTime":"1970-01-05T00:00:00Z"}"#,
            r#"  {"createdDateTime" : "1970-01-02T00:00:00Z" }  "#,
            r#"{}"#,
        ];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/graph-docs");
        let mut objects: Vec<String> = cases.iter().map(|c| c.to_string()).collect();
        for version in ["v1.0", "beta"] {
            for entry in std::fs::read_dir(root.join(version)).unwrap() {
                let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
                let mut tape = Tape::default();
                if tape.parse(&text).is_err() {
                    continue;
                }
                for (i, node) in tape.nodes.iter().enumerate() {
                    if node.tok == Tok::Object {
                        objects.push(tape.raw(&text, i).to_string());
                    }
                }
            }
        }
        assert!(objects.len() > 500, "{} objects", objects.len());
        let mut reader = DayReader::new();
        let mut with_a_day = 0;
        for object in &objects {
            for keys in [CHAT_MESSAGE_DAY_KEYS, MAIL_MESSAGE_DAY_KEYS] {
                let expected = parsed_day(object, keys);
                assert_eq!(reader.day(object, keys), expected, "{object}");
                with_a_day += usize::from(expected.is_some());
            }
        }
        assert!(with_a_day > 100, "{with_a_day} objects with a day");
    }

    proptest::proptest! {
        /// Any text, JSON or not: no panic, and where it is JSON, the full parse's day.
        #[test]
        fn any_text_gives_a_day_or_none_and_json_the_full_parses(
            text in r#"[ {}\[\],:"\\a-zA-Z0-9.+\-]{0,80}"#,
            key_first in proptest::bool::ANY,
        ) {
            let keyed = if key_first {
                format!(r#"{{"createdDateTime":"1970-01-02T00:00:00Z","x":{text}}}"#)
            } else {
                format!(r#"{{"x":{text},"createdDateTime":"1970-01-02T00:00:00Z"}}"#)
            };
            let mut reader = DayReader::new();
            for candidate in [text.as_str(), keyed.as_str()] {
                let day = reader.day(candidate, CHAT_MESSAGE_DAY_KEYS);
                if Tape::default().parse(candidate).is_ok() {
                    proptest::prop_assert_eq!(day, parsed_day(candidate, CHAT_MESSAGE_DAY_KEYS));
                }
            }
        }
    }

    #[test]
    fn reads_the_first_usable_top_level_timestamp_in_utc() {
        let mut reader = DayReader::new();
        // Nested timestamps do not count; an offset moves the UTC day.
        let raw = r#"{"replies":[{"createdDateTime":"1970-01-05T00:00:00Z"}],
            "createdDateTime":"1970-01-02T23:30:00-01:00"}"#;
        assert_eq!(reader.day(raw, CHAT_MESSAGE_DAY_KEYS), Some(2));
        let fallback = r#"{"createdDateTime":"2021-03-1706:47:05.123Z",
            "lastModifiedDateTime":"1970-01-03T00:00:00Z"}"#;
        assert_eq!(reader.day(fallback, CHAT_MESSAGE_DAY_KEYS), Some(2));
        assert_eq!(
            reader.day(r#"{"createdDateTime":5}"#, CHAT_MESSAGE_DAY_KEYS),
            None
        );
        assert_eq!(reader.day("[1]", CHAT_MESSAGE_DAY_KEYS), None);
        assert_eq!(reader.day("{", CHAT_MESSAGE_DAY_KEYS), None);
    }
}
