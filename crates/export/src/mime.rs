//! MIME messages whose attachments are streamed: mail-builder writes the headers and the
//! small parts, and each attachment's bytes are read and base64-encoded a chunk at a time
//! after them, so a message never holds an attachment in memory.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mail_builder::MessageBuilder;
use mail_builder::mime::MimePart;

/// Where an attachment's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// Small bytes made by the export (a shortcut, a card as text).
    Bytes(Vec<u8>),
    /// A file in the export folder (a copied blob), read as it is written out.
    File { path: PathBuf, bytes: u64 },
}

impl Source {
    pub fn len(&self) -> u64 {
        match self {
            Source::Bytes(bytes) => bytes.len() as u64,
            Source::File { bytes, .. } => *bytes,
        }
    }

    /// Streams the bytes into `out`.
    pub fn copy_to(&self, out: &mut impl Write) -> io::Result<u64> {
        match self {
            Source::Bytes(bytes) => out.write_all(bytes).map(|()| bytes.len() as u64),
            Source::File { path, .. } => io::copy(&mut File::open(path)?, out),
        }
    }

    fn reader(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(match self {
            Source::Bytes(bytes) => Box::new(bytes.as_slice()),
            Source::File { path, .. } => Box::new(File::open(path)?),
        })
    }
}

/// An attachment: its part's headers (built with an empty body) and its bytes.
pub(crate) struct Streamed<'x> {
    pub part: MimePart<'x>,
    pub source: Source,
}

/// Writes `message`, whose body is a `multipart/mixed` part with `boundary`, with
/// `attachments` appended to that part, each base64-encoded as it is read.
pub(crate) fn write_mixed(
    out: &mut impl Write,
    message: MessageBuilder<'_>,
    boundary: &str,
    attachments: Vec<Streamed<'_>>,
) -> io::Result<()> {
    let written = message.write_to_vec()?;
    let close = format!("\r\n--{boundary}--\r\n");
    let head = written
        .strip_suffix(close.as_bytes())
        .ok_or_else(|| io::Error::other("the message body is not the expected multipart"))?;
    out.write_all(head)?;
    for attachment in attachments {
        write!(out, "\r\n--{boundary}\r\n")?;
        // A part that names its transfer encoding is written as given: its headers, a
        // blank line and the (empty) body; the encoded bytes follow.
        let mut headers = Vec::new();
        attachment
            .part
            .transfer_encoding("base64")
            .write_part(&mut headers);
        out.write_all(&headers)?;
        base64_lines(&mut attachment.source.reader()?, out)?;
    }
    out.write_all(close.as_bytes())
}

/// Bytes per line of base64 (76 characters, RFC 2045).
const LINE_BYTES: usize = 57;

/// The base64 of everything `input` reads, in lines of 76 characters separated by CRLF.
pub(crate) fn base64_lines(input: &mut impl Read, out: &mut impl Write) -> io::Result<()> {
    let mut buffer = vec![0u8; LINE_BYTES * 1024];
    let mut line = String::with_capacity(80);
    let mut first = true;
    loop {
        let n = read_full(input, &mut buffer)?;
        for chunk in buffer[..n].chunks(LINE_BYTES) {
            if !first {
                out.write_all(b"\r\n")?;
            }
            first = false;
            line.clear();
            STANDARD.encode_string(chunk, &mut line);
            out.write_all(line.as_bytes())?;
        }
        if n < buffer.len() {
            return Ok(());
        }
    }
}

/// Fills `buffer` unless the input ends first; how much was read.
fn read_full(input: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use mail_builder::headers::content_type::ContentType;

    use super::*;

    #[test]
    fn streamed_attachments_read_back_byte_for_byte() {
        let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let message = MessageBuilder::new()
            .from(("Ada", "ada@contoso.com"))
            .subject("two attachments")
            .body(MimePart::new(
                ContentType::new("multipart/mixed").attribute("boundary", "b0"),
                vec![MimePart::new("text/plain", "hello")],
            ));
        let attachments = vec![
            Streamed {
                part: MimePart::new("application/octet-stream", Vec::<u8>::new())
                    .attachment("a.bin"),
                source: Source::Bytes(big.clone()),
            },
            Streamed {
                part: MimePart::new("text/plain", Vec::<u8>::new()).attachment("empty.txt"),
                source: Source::Bytes(Vec::new()),
            },
        ];
        let mut out = Vec::new();
        write_mixed(&mut out, message, "b0", attachments).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.lines().all(|l| l.len() <= 998), "line lengths");
        let parsed = mail_parser::MessageParser::default().parse(&out).unwrap();
        assert_eq!(parsed.body_text(0).unwrap(), "hello");
        let found: Vec<(String, Vec<u8>)> = parsed
            .attachments()
            .map(|a| {
                use mail_parser::MimeHeaders;
                (
                    a.attachment_name().unwrap().to_string(),
                    a.contents().to_vec(),
                )
            })
            .collect();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0], ("a.bin".to_string(), big));
        assert_eq!(found[1], ("empty.txt".to_string(), Vec::new()));
    }
}
