//! An item's partition day, read without building its row.

use crate::json::{Tape, Tok};
use crate::time;

/// Reads the day (since 1970-01-01, UTC) of the partition an item's row goes to: the first
/// top-level timestamp of `keys` that parses, as the builders choose it. Reuses its tape
/// from item to item.
///
/// It serves callers that group items by day before appending them; the row's own `date`
/// column stays the authority (an item whose timestamps are all unusable answers `None`,
/// and its builder then falls back to the fetch time and records why).
#[derive(Default, Debug)]
pub struct DayReader {
    tape: Tape,
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
        self.tape.parse(raw).ok()?;
        if self.tape.nodes.first()?.tok != Tok::Object {
            return None;
        }
        keys.iter().find_map(|key| {
            let value = self.tape.get(raw, 0, key)?;
            if self.tape.nodes[value].tok != Tok::Str {
                return None;
            }
            let micros = time::parse_micros(&self.tape.str(raw, value)).ok()?;
            Some(time::day_of(micros))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
