//! Opaque state tokens and the choice of items for a page.
//!
//! A round is a snapshot at the change number it began with (`w`): every page serves
//! items as they were then, so a change during the round waits for the next one. Items
//! come in a pseudo-random order fixed per round (`x`); the cursor is the order key of
//! the last item served.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::text::mix;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct StateToken {
    /// A delta token (end of a round) rather than a skip token (inside one).
    pub d: bool,
    /// The collection it belongs to.
    pub s: String,
    /// Epoch of the simulator's token store.
    pub e: u32,
    /// Issued at, simulated epoch milliseconds.
    pub t: i64,
    /// Changes after this change number.
    pub f: u64,
    /// The round's snapshot change number (skip tokens).
    pub w: u64,
    /// Order key and index of the last item served.
    pub c: Option<(u64, u64)>,
    /// Page size fixed by the first call.
    pub p: u32,
    /// `lastModifiedDateTime gt` bound, epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a: Option<i64>,
    /// `lastModifiedDateTime lt` bound, epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b: Option<i64>,
    /// Salt of the round's order.
    pub x: u64,
    /// Mail `$select`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sel: Option<Vec<String>>,
    /// Mail `changeType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ct: Option<String>,
    /// Payment model of getAllMessages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m: Option<String>,
    /// Pages served so far in the round.
    pub n: u32,
    /// Makes every token distinct.
    pub r: u64,
}

impl StateToken {
    pub(crate) fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    pub(crate) fn decode(text: &str) -> Option<StateToken> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim().trim_end_matches('='))
            .ok()?;
        serde_json::from_slice(&raw).ok()
    }
}

/// The order key of item `idx` in a round salted with `salt`.
pub(crate) fn order_key(salt: u64, idx: usize) -> u64 {
    mix(salt ^ mix(idx as u64))
}

/// The next page: up to `size` candidates after `cursor` in the round's order, and
/// whether more remain.
pub(crate) fn select_page(
    candidates: impl Iterator<Item = usize>,
    salt: u64,
    cursor: Option<(u64, u64)>,
    size: usize,
) -> (Vec<(u64, usize)>, bool) {
    let mut keyed: Vec<(u64, usize)> = candidates
        .map(|idx| (order_key(salt, idx), idx))
        .filter(|&(key, idx)| match cursor {
            None => true,
            Some(c) => (key, idx as u64) > c,
        })
        .collect();
    let more = keyed.len() > size;
    if more {
        keyed.select_nth_unstable(size);
        keyed.truncate(size);
    }
    keyed.sort_unstable();
    (keyed, more)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_every_candidate_once_in_a_non_chronological_order() {
        let salt = 42;
        let mut served = Vec::new();
        let mut cursor = None;
        loop {
            let (page, more) = select_page(0..103usize, salt, cursor, 10);
            served.extend(page.iter().map(|&(_, i)| i));
            cursor = page.last().map(|&(k, i)| (k, i as u64));
            if !more {
                break;
            }
        }
        let mut sorted = served.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..103).collect::<Vec<_>>());
        assert_ne!(served, sorted, "a round is not served in index order");
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let token = StateToken {
            d: false,
            s: "chats:u1".into(),
            e: 0,
            t: 1,
            f: 2,
            w: 3,
            c: Some((4, 5)),
            p: 6,
            a: None,
            b: Some(7),
            x: 8,
            sel: None,
            ct: None,
            m: Some("A".into()),
            n: 1,
            r: 9,
        };
        let back = StateToken::decode(&token.encode()).expect("decodes");
        assert_eq!(back.c, Some((4, 5)));
        assert_eq!(back.m.as_deref(), Some("A"));
        assert!(StateToken::decode("not-a-token").is_none());
    }
}
