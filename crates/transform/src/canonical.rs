//! The canonical form of a JSON value and its SHA-256 (`content_sha256`): the identity of a
//! message version.
//!
//! The canonical form is RFC 8785's JSON Canonicalization Scheme (JCS), so anyone can
//! recompute it with a JCS library: object members sorted by key compared as UTF-16 code
//! units, no whitespace, strings re-escaped minimally (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`,
//! `\t`, other control characters as lowercase `\u00xx`; nothing else escaped), numbers as
//! ECMAScript prints them (`1.0` is `1`, `1e5` is `100000`). Two cases JCS leaves undefined
//! because I-JSON forbids them: members with equal keys keep their order, and a lone
//! surrogate escape stays a lowercase `\udxxx` escape; a number too large for a double stays
//! as written. Two payloads hash the same exactly when they are the same JSON value up to
//! whitespace, key order, string escaping and number spelling.

use std::cmp::Ordering;

use sha2::{Digest, Sha256};

use crate::json::{Piece, SyntaxError, Tape, Tok, Unescaped};

/// Why `canonical_sha256` could not hash its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not valid JSON: {0}")]
pub struct CanonicalError(pub SyntaxError);

/// Lowercase hex of this is `content_sha256`.
pub fn canonical_sha256(raw: &str) -> Result<[u8; 32], CanonicalError> {
    let mut tape = Tape::default();
    tape.parse(raw).map_err(CanonicalError)?;
    let mut writer = CanonicalWriter::default();
    Ok(writer.sha256(&tape, raw, 0))
}

/// Reusable buffers for writing canonical forms.
#[derive(Default)]
pub(crate) struct CanonicalWriter {
    out: Vec<u8>,
    /// Members of the objects being written, innermost last:
    /// (first 8 key bytes as a big-endian number, key index, value index).
    members: Vec<(u64, usize, usize)>,
}

impl CanonicalWriter {
    /// SHA-256 of the canonical form of the value at `idx`.
    pub(crate) fn sha256(&mut self, tape: &Tape, src: &str, idx: usize) -> [u8; 32] {
        self.out.clear();
        self.write(tape, src, idx);
        Sha256::digest(&self.out).into()
    }

    #[cfg(test)]
    pub(crate) fn text(&mut self, tape: &Tape, src: &str, idx: usize) -> String {
        self.out.clear();
        self.write(tape, src, idx);
        String::from_utf8(self.out.clone()).expect("canonical form is UTF-8")
    }

    fn write(&mut self, tape: &Tape, src: &str, idx: usize) {
        let node = tape.nodes[idx];
        match node.tok {
            Tok::Object => {
                let base = self.members.len();
                for (k, v) in tape.members(idx) {
                    self.members.push((key_prefix(tape, src, k), k, v));
                }
                // Most keys differ in their first 8 bytes: compare those first.
                self.members[base..].sort_by(|a, b| {
                    utf16_order(&a.0.to_be_bytes(), &b.0.to_be_bytes())
                        .then_with(|| compare_keys(tape, src, a.1, b.1))
                });
                self.out.push(b'{');
                for i in base..self.members.len() {
                    if i > base {
                        self.out.push(b',');
                    }
                    let (_, key, value) = self.members[i];
                    self.write(tape, src, key);
                    self.out.push(b':');
                    self.write(tape, src, value);
                }
                self.out.push(b'}');
                self.members.truncate(base);
            }
            Tok::Array => {
                self.out.push(b'[');
                for (n, e) in tape.elements(idx).enumerate() {
                    if n > 0 {
                        self.out.push(b',');
                    }
                    self.write(tape, src, e);
                }
                self.out.push(b']');
            }
            Tok::Str | Tok::Key => {
                let text = &src[node.start as usize..node.end as usize];
                if node.escaped {
                    self.out.push(b'"');
                    for piece in Unescaped::new(text) {
                        match piece {
                            Piece::Text(t) => self.out.extend_from_slice(t.as_bytes()),
                            Piece::Char(c) => escape_char(&mut self.out, c),
                            Piece::LoneSurrogate(u) => {
                                self.out.extend_from_slice(format!("\\u{u:04x}").as_bytes())
                            }
                        }
                    }
                    self.out.push(b'"');
                } else {
                    // Without escapes the text has no quote, backslash or control character.
                    self.out.push(b'"');
                    self.out.extend_from_slice(text.as_bytes());
                    self.out.push(b'"');
                }
            }
            Tok::Number => {
                let text = &src[node.start as usize..node.end as usize];
                write_number(&mut self.out, text);
            }
            Tok::True | Tok::False | Tok::Null => {
                self.out
                    .extend_from_slice(&src.as_bytes()[node.start as usize..node.end as usize]);
            }
        }
    }
}

/// The first 8 bytes of the unescaped key, zero-padded, as a big-endian number: ordering
/// these agrees with ordering the keys' bytes (no key holds a raw zero byte).
fn key_prefix(tape: &Tape, src: &str, k: usize) -> u64 {
    let n = tape.nodes[k];
    let mut buf = [0u8; 8];
    if n.escaped {
        let key = tape.str(src, k);
        let len = key.len().min(8);
        buf[..len].copy_from_slice(&key.as_bytes()[..len]);
    } else {
        let bytes = &src.as_bytes()[n.start as usize..n.end as usize];
        let len = bytes.len().min(8);
        buf[..len].copy_from_slice(&bytes[..len]);
    }
    u64::from_be_bytes(buf)
}

/// Orders keys by their unescaped text as UTF-16 code units.
fn compare_keys(tape: &Tape, src: &str, a: usize, b: usize) -> Ordering {
    let (na, nb) = (tape.nodes[a], tape.nodes[b]);
    if !na.escaped && !nb.escaped {
        let ta = &src.as_bytes()[na.start as usize..na.end as usize];
        let tb = &src.as_bytes()[nb.start as usize..nb.end as usize];
        return utf16_order(ta, tb);
    }
    utf16_order(tape.str(src, a).as_bytes(), tape.str(src, b).as_bytes())
}

/// Compares UTF-8 text (or a zero-padded prefix of it) in the order of its UTF-16 code units.
/// Byte order is code point order, which agrees with UTF-16 order except between a
/// character from U+E000 to U+FFFF (lead byte 0xEE or 0xEF) and one above U+FFFF (lead byte
/// 0xF0 to 0xF4), whose surrogate pair sorts first in UTF-16.
fn utf16_order(a: &[u8], b: &[u8]) -> Ordering {
    let Some(i) = a.iter().zip(b).position(|(x, y)| x != y) else {
        return a.len().cmp(&b.len());
    };
    let (x, y) = (a[i], b[i]);
    if x >= 0xEE && y >= 0xEE {
        // Both lead bytes (continuation bytes are below 0xC0) at the same character.
        let supplementary = |lead: u8| lead >= 0xF0;
        if supplementary(x) != supplementary(y) {
            return if supplementary(x) {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
    }
    x.cmp(&y)
}

/// Writes a JSON number as ECMAScript's `Number.prototype.toString` prints it.
fn write_number(out: &mut Vec<u8>, text: &str) {
    // Integers of up to 15 digits print as written (no leading zeros in JSON); `-0` is `0`.
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()) && text != "-0" {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => {
            let mut buffer = ryu_js::Buffer::new();
            out.extend_from_slice(buffer.format(value).as_bytes());
        }
        // Beyond a double's range: JCS cannot print it, so it stays as written.
        _ => out.extend_from_slice(text.as_bytes()),
    }
}

#[inline]
fn escape_char(out: &mut Vec<u8>, c: char) {
    match c {
        '"' => out.extend_from_slice(b"\\\""),
        '\\' => out.extend_from_slice(b"\\\\"),
        '\u{8}' => out.extend_from_slice(b"\\b"),
        '\u{c}' => out.extend_from_slice(b"\\f"),
        '\n' => out.extend_from_slice(b"\\n"),
        '\r' => out.extend_from_slice(b"\\r"),
        '\t' => out.extend_from_slice(b"\\t"),
        c if (c as u32) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
        c => {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        let mut t = Tape::default();
        t.parse(s).unwrap();
        CanonicalWriter::default().text(&t, s, 0)
    }

    #[test]
    fn sorts_keys_and_drops_whitespace() {
        assert_eq!(
            canon(r#" { "b" : [ 1 , { "z":1, "a" : 2 } ], "a": "\u00e9\/\n\u0001" } "#),
            "{\"a\":\"é/\\n\\u0001\",\"b\":[1,{\"a\":2,\"z\":1}]}"
        );
        assert_eq!(canon(r#"{"é":1,"z":2,"Z":3}"#), r#"{"Z":3,"z":2,"é":1}"#);
        assert_eq!(
            canon(r#"[1.0, 1e5, -0, 0.1, 1e21, 123456789012345678, 5e-7, 1e400]"#),
            "[1,100000,0,0.1,1e+21,123456789012345680,5e-7,1e400]"
        );
        // UTF-16 order: U+1F600 (a surrogate pair) sorts before U+FB01.
        assert_eq!(
            canon("{\"\u{fb01}\":1,\"\u{1f600}\":2}"),
            "{\"\u{1f600}\":2,\"\u{fb01}\":1}"
        );
        assert_eq!(canon(r#""\ud800""#), r#""\ud800""#);
    }

    /// The example of RFC 8785, section 3.2.2 and 3.2.3.
    #[test]
    fn the_rfc_8785_example_canonicalizes_as_published() {
        let input = r#"{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"#;
        assert_eq!(
            canon(input),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }
}
