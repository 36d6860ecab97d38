//! Ids and URLs as Graph, SharePoint and Exchange write them, and what a file's name says
//! its bytes are.

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::blob::{self, Source};
use crate::text;

// ---- URLs and ids --------------------------------------------------------------------------

/// A sharing URL as `/shares/{id}` takes it: `u!` and the unpadded base64url of the URL.
pub fn encode_sharing_url(url: &str) -> String {
    format!(
        "u!{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
    )
}

/// The URL a share id encodes; `None` unless it is encoded as the docs say.
pub(crate) fn decode_share_id(id: &str) -> Option<String> {
    let encoded = id.strip_prefix("u!")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// A URL as a lookup key: host and decoded path, any case, no query.
pub(crate) fn url_key(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    percent_encoding::percent_decode_str(rest)
        .decode_utf8_lossy()
        .trim_end_matches('/')
        .to_lowercase()
}

/// Characters a URL path segment keeps as they are.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'(')
    .remove(b')');

pub(super) fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

/// A hosted content id as Graph writes them: base64 of `id=x_...,type=1,url=...`. Ids
/// go in URL paths, so ones whose base64 holds `/` or `+` are drawn again.
pub(super) fn hosted_content_id(rng: &mut StdRng) -> String {
    loop {
        let region = ["wus", "eus", "weu", "neu"][rng.random_range(0..4)];
        let object = format!(
            "0-{region}-d{}-{}",
            rng.random_range(1..20),
            text::hex_id(rng, 16)
        );
        let id = base64::engine::general_purpose::STANDARD.encode(format!(
            "id=x_{object},type=1,url=https://{}-api.asm.skype.com/v1/objects/{object}/views/imgo",
            &region[..2]
        ));
        if !id.contains(['/', '+']) {
            return id;
        }
    }
}

/// A SharePoint item id: `01` and 32 base32 characters.
pub(super) fn drive_item_id(rng: &mut StdRng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut id = String::from("01");
    for _ in 0..32 {
        id.push(char::from(ALPHABET[rng.random_range(0..32)]));
    }
    id
}

/// A folder's item id, the same for every file in it.
pub(super) fn folder_item_id(key: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut rng = StdRng::from_seed(digest.into());
    drive_item_id(&mut rng)
}

pub(super) fn drive_id(rng: &mut StdRng) -> String {
    let raw: [u8; 48] = rng.random();
    format!(
        "b!{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

/// An Exchange attachment id: the mail's id and a suffix.
pub(super) fn attachment_id(rng: &mut StdRng, mail_id: &str) -> String {
    let raw: [u8; 16] = rng.random();
    let stem: String = mail_id.trim_end_matches('=').chars().take(60).collect();
    format!(
        "{stem}BEgAQA{}=",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

/// The media type of a file name's extension.
pub(crate) fn media_type(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "pdf" => "application/pdf",
        "csv" => "text/csv",
        "txt" => "text/plain",
        "png" => "image/png",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// Bytes for a file called `name`: a real PNG for images, text lines for text, noise
/// otherwise.
pub(super) fn file_source(name: &str, seed: u64, size: u64) -> Source {
    match media_type(name) {
        "image/png" => blob::png(seed, size),
        "text/csv" | "text/plain" => Source::Text { seed, len: size },
        _ => Source::Noise { seed, len: size },
    }
}

pub(super) const FILE_NAMES: &[&str] = &[
    "Budget.xlsx",
    "Contract draft.docx",
    "Minutes.docx",
    "Forecast Q3.xlsx",
    "Trade log.csv",
    "Board deck.pptx",
    "Policy.pdf",
    "Term sheet.pdf",
    "Site photo.png",
    "Notes.txt",
];

pub(super) const MAIL_FILE_NAMES: &[&str] = &[
    "Invoice 2291.pdf",
    "Q3 numbers.xlsx",
    "Signed agreement.pdf",
    "Agenda.docx",
    "Export.csv",
    "Screenshot.png",
    "Archive.zip",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharing_urls_encode_as_the_docs_say() {
        // shares-get: base64, then unpadded base64url, then `u!`. This URL's base64 has
        // padding and both characters base64url replaces.
        let url = "https://x/??>~~>";
        let standard = base64::engine::general_purpose::STANDARD.encode(url);
        let expected = format!(
            "u!{}",
            standard
                .trim_end_matches('=')
                .replace('/', "_")
                .replace('+', "-")
        );
        assert!(standard.ends_with('=') && standard.contains('/') && standard.contains('+'));
        assert_eq!(encode_sharing_url(url), expected);
        assert_eq!(decode_share_id(&expected).as_deref(), Some(url));
        // Padded, standard-alphabet or unprefixed forms are not what the docs describe.
        assert_eq!(decode_share_id(&format!("u!{standard}")), None);
        assert_eq!(decode_share_id(&expected[2..]), None);
    }

    #[test]
    fn hosted_content_ids_look_like_graphs_and_fit_in_a_path() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..200 {
            let id = hosted_content_id(&mut rng);
            assert!(id.starts_with("aWQ9eF8w"), "{id}");
            assert!(!id.contains(['/', '+']));
            let text = String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(&id)
                    .expect("base64"),
            )
            .expect("text");
            assert!(text.contains(",type=1,url=https://"), "{text}");
        }
    }

    #[test]
    fn url_keys_ignore_case_encoding_and_query() {
        assert_eq!(
            url_key("https://contoso.sharepoint.com/sites/A/Shared%20Documents/B%20c.docx?web=1"),
            url_key("https://CONTOSO.sharepoint.com/sites/a/Shared Documents/b c.docx")
        );
    }
}
