//! Mail as MIME (RFC 5322 and 2045-2049), the way `GET .../messages/{id}/$value` and an
//! item attachment's `$value` serve it: headers, the HTML body, then each file attachment
//! as a base64 part and each attached item as a `message/rfc822` part. Large attachments
//! stay generated: the MIME is a [`Source`] built around theirs.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use sha2::Digest as _;

use crate::blob::Source;

/// Who a header names.
pub(crate) struct Mailbox<'a> {
    pub name: &'a str,
    pub address: &'a str,
}

/// What a message's MIME is made of.
pub(crate) struct Message<'a> {
    pub from: Mailbox<'a>,
    pub to: Vec<Mailbox<'a>>,
    pub cc: Vec<Mailbox<'a>>,
    pub subject: &'a str,
    pub date: DateTime<Utc>,
    /// `internetMessageId`, angle brackets included.
    pub message_id: &'a str,
    pub html: &'a str,
    pub attachments: Vec<Part<'a>>,
}

/// An attachment inside a message's MIME.
pub(crate) enum Part<'a> {
    File {
        name: &'a str,
        content_type: &'a str,
        content_id: Option<&'a str>,
        inline: bool,
        modified: DateTime<Utc>,
        source: Source,
    },
    /// An attached message, itself MIME.
    Item { name: &'a str, source: Source },
}

/// RFC 5322 date: `Mon, 4 Sep 2017 10:00:00 +0000`.
pub(crate) fn date(t: DateTime<Utc>) -> String {
    t.format("%a, %-d %b %Y %H:%M:%S +0000").to_string()
}

/// Header text: as it is when it is plain ASCII, else an RFC 2047 encoded word.
fn header_text(text: &str) -> String {
    if text.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) {
        text.to_string()
    } else {
        format!(
            "=?utf-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(text)
        )
    }
}

fn mailbox(m: &Mailbox<'_>) -> String {
    let plain = m
        .name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '.' || c == '-');
    let name = if m.name.is_empty() {
        return format!("<{}>", m.address);
    } else if plain {
        m.name.to_string()
    } else if m.name.is_ascii() {
        format!("\"{}\"", m.name.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        header_text(m.name)
    };
    format!("{name} <{}>", m.address)
}

/// A `name="..."` parameter, RFC 2231-encoded when it is not plain ASCII.
fn name_parameter(key: &str, value: &str) -> String {
    if value.chars().all(|c| c.is_ascii_graphic() || c == ' ') && !value.contains('"') {
        format!("{key}=\"{value}\"")
    } else {
        let encoded =
            percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC);
        format!("{key}*=utf-8''{encoded}")
    }
}

/// A boundary no generated content contains: taken from the message id's digest.
fn boundary(message_id: &str, level: &str) -> String {
    let digest = sha2::Sha256::digest(message_id.as_bytes());
    format!("_{level}_{}_", hex::encode(&digest[..12]))
}

fn headers(out: &mut String, m: &Message<'_>) {
    let list = |people: &[Mailbox<'_>]| {
        people
            .iter()
            .map(mailbox)
            .collect::<Vec<_>>()
            .join(",\r\n\t")
    };
    out.push_str(&format!("From: {}\r\n", mailbox(&m.from)));
    if !m.to.is_empty() {
        out.push_str(&format!("To: {}\r\n", list(&m.to)));
    }
    if !m.cc.is_empty() {
        out.push_str(&format!("CC: {}\r\n", list(&m.cc)));
    }
    out.push_str(&format!("Subject: {}\r\n", header_text(m.subject)));
    out.push_str(&format!("Thread-Topic: {}\r\n", header_text(m.subject)));
    out.push_str(&format!("Date: {}\r\n", date(m.date)));
    out.push_str(&format!("Message-ID: {}\r\n", m.message_id));
    out.push_str("Content-Language: en-US\r\n");
}

/// The whole message as MIME.
pub(crate) fn message(m: &Message<'_>) -> Source {
    let mut head = String::new();
    headers(&mut head, m);
    let html = Source::base64(Source::fixed(m.html.as_bytes().to_vec()));
    let html_headers =
        "Content-Type: text/html; charset=\"utf-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n";
    if m.attachments.is_empty() {
        head.push_str("X-MS-Has-Attach:\r\nMIME-Version: 1.0\r\n");
        head.push_str(html_headers);
        return Source::concat(vec![Source::fixed(head), html]);
    }
    let b = boundary(m.message_id, "004");
    head.push_str("X-MS-Has-Attach: yes\r\nMIME-Version: 1.0\r\n");
    head.push_str(&format!(
        "Content-Type: multipart/mixed;\r\n\tboundary=\"{b}\"\r\n\r\n--{b}\r\n{html_headers}"
    ));
    let mut parts = vec![Source::fixed(head), html];
    for attachment in &m.attachments {
        let mut part = format!("\r\n--{b}\r\n");
        match attachment {
            Part::File {
                name,
                content_type,
                content_id,
                inline,
                modified,
                source,
            } => {
                part.push_str(&format!(
                    "Content-Type: {content_type}; {}\r\n",
                    name_parameter("name", name)
                ));
                part.push_str(&format!("Content-Description: {}\r\n", header_text(name)));
                part.push_str(&format!(
                    "Content-Disposition: {}; {}; size={};\r\n\tcreation-date=\"{}\";\r\n\tmodification-date=\"{}\"\r\n",
                    if *inline { "inline" } else { "attachment" },
                    name_parameter("filename", name),
                    source.len(),
                    modified.format("%a, %d %b %Y %H:%M:%S GMT"),
                    modified.format("%a, %d %b %Y %H:%M:%S GMT"),
                ));
                if let Some(id) = content_id {
                    part.push_str(&format!("Content-ID: <{id}>\r\n"));
                }
                part.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
                parts.push(Source::fixed(part));
                parts.push(Source::base64(source.clone()));
            }
            Part::Item { name, source } => {
                part.push_str("Content-Type: message/rfc822\r\n");
                part.push_str(&format!(
                    "Content-Disposition: attachment; {}\r\n\r\n",
                    name_parameter("filename", &format!("{name}.eml"))
                ));
                parts.push(Source::fixed(part));
                parts.push(source.clone());
            }
        }
    }
    parts.push(Source::fixed(format!("\r\n--{b}--\r\n")));
    Source::concat(parts)
}

/// An attached message of about `size` bytes: headers, then a plain-text body of
/// generated lines filling the rest.
pub(crate) fn item(m: &Message<'_>, seed: u64, size: u64) -> Source {
    let mut head = String::new();
    headers(&mut head, m);
    head.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"us-ascii\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n");
    let fill = size.saturating_sub(head.len() as u64).max(2);
    Source::concat(vec![Source::fixed(head), Source::Text { seed, len: fill }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_encode_what_is_not_plain_ascii() {
        assert_eq!(header_text("Budget"), "Budget");
        assert_eq!(header_text("Café"), "=?utf-8?B?Q2Fmw6k=?=");
        assert_eq!(
            mailbox(&Mailbox {
                name: "Lee, Ann",
                address: "ann@contoso.com"
            }),
            "\"Lee, Ann\" <ann@contoso.com>"
        );
        assert_eq!(
            name_parameter("filename", "a b.pdf"),
            "filename=\"a b.pdf\""
        );
        assert_eq!(
            name_parameter("filename", "é.pdf"),
            "filename*=utf-8''%C3%A9%2Epdf"
        );
    }
}
