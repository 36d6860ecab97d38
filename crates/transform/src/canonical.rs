//! The canonical form of a JSON value and its SHA-256: the identity of a message version.
//!
//! Canonical form: object members sorted by key (compared as unescaped UTF-8 bytes, which is
//! code point order; members with equal keys keep their order), no whitespace, strings
//! unescaped and re-escaped minimally (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other control
//! characters as lowercase `\u00xx`, a lone surrogate escape as lowercase `\udxxx`; nothing
//! else escaped), numbers exactly as written. Two payloads hash the same exactly when they are
//! the same JSON value up to whitespace, key order and string escaping.

use std::cmp::Ordering;

use sha2::{Digest, Sha256};

use crate::json::{Piece, SyntaxError, Tape, Tok, Unescaped};

/// Why `canonical_sha256` could not hash its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not valid JSON: {0}")]
pub struct CanonicalError(pub SyntaxError);

/// Lowercase hex of this is `raw_sha256`.
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
                // Most keys differ in their first 8 bytes: compare those as one number first.
                self.members[base..].sort_by(|a, b| {
                    a.0.cmp(&b.0)
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
            Tok::Number | Tok::True | Tok::False | Tok::Null => {
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

/// Orders keys by their unescaped UTF-8 bytes (code point order).
fn compare_keys(tape: &Tape, src: &str, a: usize, b: usize) -> Ordering {
    let (na, nb) = (tape.nodes[a], tape.nodes[b]);
    if !na.escaped && !nb.escaped {
        let ta = &src.as_bytes()[na.start as usize..na.end as usize];
        let tb = &src.as_bytes()[nb.start as usize..nb.end as usize];
        return ta.cmp(tb);
    }
    tape.str(src, a).as_bytes().cmp(tape.str(src, b).as_bytes())
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
        assert_eq!(canon(r#"[1.0, 1e5, -0]"#), "[1.0,1e5,-0]");
        assert_eq!(canon(r#""\ud800""#), r#""\ud800""#);
    }
}
