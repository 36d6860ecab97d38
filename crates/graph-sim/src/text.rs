//! Words, names and identifiers for generated content.

use rand::Rng;
use rand::rngs::StdRng;

pub(crate) const FIRST_NAMES: &[&str] = &[
    "Adele",
    "Alex",
    "Allan",
    "Bianca",
    "Christie",
    "Debra",
    "Diego",
    "Emily",
    "Enrico",
    "Grady",
    "Henrietta",
    "Irvin",
    "Isaiah",
    "Johanna",
    "Joni",
    "Lee",
    "Lidia",
    "Lynne",
    "Megan",
    "Miriam",
    "Nestor",
    "Patti",
    "Pradeep",
    "Raul",
    "Robin",
    "Sanjay",
    "Zoë",
    "Łukasz",
    "Søren",
    "José",
];

pub(crate) const LAST_NAMES: &[&str] = &[
    "Vance",
    "Wilber",
    "Deyoung",
    "Pia",
    "Cline",
    "Berger",
    "Siciliani",
    "Braun",
    "Rossi",
    "Archie",
    "Mueller",
    "Sauer",
    "Langer",
    "Lankford",
    "Sherman",
    "Gu",
    "Holloway",
    "Gilbert",
    "Bowen",
    "Bowen",
    "Wilke",
    "Patel",
    "Fernandes",
    "Kline",
    "Gupta",
    "Nakamura",
    "O'Brien",
    "Østergaard",
    "Ñúñez",
];

/// The words of generated message text that need no escaping in HTML or JSON (other
/// generators of Graph-like text, such as the transform benchmark, take them too).
pub const PLAIN_WORDS: &[&str] = &[
    "the",
    "quarterly",
    "report",
    "is",
    "ready",
    "please",
    "review",
    "numbers",
    "before",
    "friday",
    "meeting",
    "client",
    "approved",
    "contract",
    "budget",
    "forecast",
    "risk",
    "compliance",
    "trade",
    "desk",
    "settle",
    "invoice",
    "shipment",
    "launch",
    "deadline",
    "update",
    "call",
    "notes",
    "agenda",
    "follow",
    "up",
    "thanks",
    "ok",
    "sounds",
    "good",
    "can",
    "we",
    "move",
    "this",
    "to",
    "tomorrow",
    "morning",
    "draft",
    "attached",
    "see",
    "link",
];

/// The words of generated message text that do need escaping or care: markup, an
/// ampersand, quotes, accents, another script, an emoji.
const AWKWARD_WORDS: &[&str] = &[
    "<tags>",
    "&",
    "\"quoted\"",
    "naïve",
    "café",
    "über",
    "日本語",
    "😀",
];

const TOPICS: &[&str] = &[
    "Quarterly close",
    "Launch prep",
    "Desk chatter",
    "Audit follow-up",
    "Vendor review",
    "Offsite planning",
    "Incident 4411",
    "Budget 2025",
    "Hiring loop",
    "Weekly sync",
];

pub(crate) const CHANNEL_NAMES: &[&str] = &[
    "General",
    "Announcements",
    "Deals",
    "Research",
    "Operations",
    "Legal",
    "Random",
    "Design",
    "Support",
    "Releases",
];

pub(crate) const TEAM_NAMES: &[&str] = &[
    "Mark 8 Project Team",
    "Sales and Marketing",
    "Retail",
    "Digital Initiative Public Relations",
    "U.S. Sales",
    "Contoso Trading Desk",
    "Finance",
    "Engineering",
];

pub(crate) const REACTIONS: &[(&str, &str)] = &[
    ("like", "Like"),
    ("heart", "Heart"),
    ("laugh", "Laugh"),
    ("surprised", "Surprised"),
    ("💯", "Hundred points"),
    ("👀", "Eyes"),
];

pub(crate) fn sentence(rng: &mut StdRng, min: usize, max: usize) -> String {
    let n = rng.random_range(min..=max);
    let mut out = String::new();
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        // One draw over both lists, as if they were one.
        let i = rng.random_range(0..PLAIN_WORDS.len() + AWKWARD_WORDS.len());
        out.push_str(match PLAIN_WORDS.get(i) {
            Some(word) => word,
            None => AWKWARD_WORDS[i - PLAIN_WORDS.len()],
        });
    }
    out
}

pub(crate) fn topic(rng: &mut StdRng) -> String {
    TOPICS[rng.random_range(0..TOPICS.len())].to_string()
}

/// HTML-escape text placed inside a message body.
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

pub(crate) fn uuid(rng: &mut StdRng) -> String {
    let bytes: [u8; 16] = rng.random();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

pub(crate) fn hex_id(rng: &mut StdRng, bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rng.random()).collect();
    hex::encode(raw)
}

/// An Exchange-looking item id (`AAMkAD...`), URL-safe base64.
pub(crate) fn exchange_id(rng: &mut StdRng, prefix: &str) -> String {
    use base64::Engine as _;
    let raw: Vec<u8> = (0..48).map(|_| rng.random()).collect();
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

/// A fast 64-bit mixer (splitmix64): the pseudo-random order of items within a round.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
