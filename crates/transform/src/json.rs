//! A one-pass JSON reader that records every value of an item as a flat tape of byte ranges.
//!
//! The transform needs three things from each item that a tree of owned values does not give
//! cheaply: the exact byte range of nested values (expanded replies keep their own bytes),
//! numbers exactly as written (the canonical hash keeps them), and no allocation per value.
//! The tape is reused from item to item.

use std::borrow::Cow;

/// Kind of a tape entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    Object,
    Array,
    /// An object key; its value follows as the next entry.
    Key,
    Str,
    Number,
    True,
    False,
    Null,
}

/// One tape entry. For strings and keys `start..end` excludes the quotes; for the others it
/// is the value's full text. `next` is the index of the entry after this value's subtree.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node {
    pub tok: Tok,
    /// Strings and keys: whether the text holds backslash escapes.
    pub escaped: bool,
    pub start: u32,
    pub end: u32,
    pub next: u32,
}

/// Why an item is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub offset: usize,
    pub message: &'static str,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

/// Deeper nesting than this is refused rather than risking the stack of later passes.
pub(crate) const MAX_DEPTH: usize = 256;

#[derive(Default, Debug)]
pub(crate) struct Tape {
    pub nodes: Vec<Node>,
    stack: Vec<u32>,
}

impl Tape {
    /// Reads one JSON value spanning all of `src` (surrounding whitespace allowed).
    pub(crate) fn parse(&mut self, src: &str) -> Result<(), SyntaxError> {
        self.nodes.clear();
        self.stack.clear();
        if src.len() >= u32::MAX as usize {
            return Err(SyntaxError {
                offset: 0,
                message: "item larger than 4 GiB",
            });
        }
        let b = src.as_bytes();
        let mut i = skip_ws(b, 0);
        // Expect a value; after a value, expect `,` or a closer of the enclosing container.
        loop {
            // ---- a value at i
            if i >= b.len() {
                return Err(err(i, "unexpected end of input, expected a value"));
            }
            match b[i] {
                b'{' | b'[' => {
                    if self.stack.len() >= MAX_DEPTH {
                        return Err(err(i, "nesting deeper than 256 levels"));
                    }
                    let tok = if b[i] == b'{' {
                        Tok::Object
                    } else {
                        Tok::Array
                    };
                    self.stack.push(self.nodes.len() as u32);
                    self.nodes.push(Node {
                        tok,
                        escaped: false,
                        start: i as u32,
                        end: 0,
                        next: 0,
                    });
                    i = skip_ws(b, i + 1);
                    let close = if tok == Tok::Object { b'}' } else { b']' };
                    if i < b.len() && b[i] == close {
                        i = self.close(b, i)?;
                    } else if tok == Tok::Object {
                        i = self.key(b, i)?;
                        continue;
                    } else {
                        continue;
                    }
                }
                b'"' => {
                    let (end, escaped) = scan_string(b, i + 1)?;
                    self.push_leaf(Tok::Str, escaped, i as u32 + 1, end as u32);
                    i = end + 1;
                }
                b't' => i = self.literal(b, i, b"true", Tok::True)?,
                b'f' => i = self.literal(b, i, b"false", Tok::False)?,
                b'n' => i = self.literal(b, i, b"null", Tok::Null)?,
                b'-' | b'0'..=b'9' => {
                    let end = scan_number(b, i)?;
                    self.push_leaf(Tok::Number, false, i as u32, end as u32);
                    i = end;
                }
                _ => return Err(err(i, "expected a JSON value")),
            }
            // ---- after a value
            loop {
                i = skip_ws(b, i);
                let Some(&top) = self.stack.last() else {
                    if i != b.len() {
                        return Err(err(i, "unexpected text after the JSON value"));
                    }
                    return Ok(());
                };
                let in_object = self.nodes[top as usize].tok == Tok::Object;
                match b.get(i) {
                    Some(b',') => {
                        i = skip_ws(b, i + 1);
                        if in_object {
                            i = self.key(b, i)?;
                        }
                        break;
                    }
                    Some(b'}') if in_object => i = self.close(b, i)?,
                    Some(b']') if !in_object => i = self.close(b, i)?,
                    Some(_) => {
                        return Err(err(
                            i,
                            if in_object {
                                "expected `,` or `}`"
                            } else {
                                "expected `,` or `]`"
                            },
                        ));
                    }
                    None => return Err(err(i, "unexpected end of input inside a container")),
                }
            }
        }
    }

    fn close(&mut self, _b: &[u8], i: usize) -> Result<usize, SyntaxError> {
        let top = self.stack.pop().expect("a container is open") as usize;
        let next = self.nodes.len() as u32;
        let node = &mut self.nodes[top];
        node.end = i as u32 + 1;
        node.next = next;
        Ok(i + 1)
    }

    /// Reads `"key" :` at i and returns the index of the value.
    fn key(&mut self, b: &[u8], i: usize) -> Result<usize, SyntaxError> {
        if b.get(i) != Some(&b'"') {
            return Err(err(i, "expected an object key"));
        }
        let (end, escaped) = scan_string(b, i + 1)?;
        self.push_leaf(Tok::Key, escaped, i as u32 + 1, end as u32);
        let j = skip_ws(b, end + 1);
        if b.get(j) != Some(&b':') {
            return Err(err(j, "expected `:` after an object key"));
        }
        Ok(skip_ws(b, j + 1))
    }

    /// A node with no children: the next node follows it directly.
    #[inline]
    fn push_leaf(&mut self, tok: Tok, escaped: bool, start: u32, end: u32) {
        let next = self.nodes.len() as u32 + 1;
        self.nodes.push(Node {
            tok,
            escaped,
            start,
            end,
            next,
        });
    }

    fn literal(&mut self, b: &[u8], i: usize, word: &[u8], tok: Tok) -> Result<usize, SyntaxError> {
        if b.len() < i + word.len() || &b[i..i + word.len()] != word {
            return Err(err(i, "invalid literal"));
        }
        self.push_leaf(tok, false, i as u32, (i + word.len()) as u32);
        Ok(i + word.len())
    }

    /// Members of the object at `idx`: `(key index, value index)` pairs.
    pub(crate) fn members(&self, idx: usize) -> Members<'_> {
        Members {
            tape: self,
            at: idx + 1,
            end: self.nodes[idx].next as usize,
        }
    }

    /// Elements of the array at `idx`.
    pub(crate) fn elements(&self, idx: usize) -> Elements<'_> {
        Elements {
            tape: self,
            at: idx + 1,
            end: self.nodes[idx].next as usize,
        }
    }

    /// The full text of the value at `idx` (strings include their quotes).
    pub(crate) fn raw<'s>(&self, src: &'s str, idx: usize) -> &'s str {
        let n = self.nodes[idx];
        match n.tok {
            Tok::Str | Tok::Key => &src[n.start as usize - 1..n.end as usize + 1],
            _ => &src[n.start as usize..n.end as usize],
        }
    }

    /// The text of a string or key as written (escapes not decoded).
    #[inline]
    pub(crate) fn text<'s>(&self, src: &'s str, idx: usize) -> &'s str {
        let n = self.nodes[idx];
        &src[n.start as usize..n.end as usize]
    }

    /// The text of a string or key, unescaped (borrowed when it has no escapes).
    pub(crate) fn str<'s>(&self, src: &'s str, idx: usize) -> Cow<'s, str> {
        let n = self.nodes[idx];
        let text = &src[n.start as usize..n.end as usize];
        if n.escaped {
            Cow::Owned(unescape(text))
        } else {
            Cow::Borrowed(text)
        }
    }

    /// The value of key `name` in the object at `idx`, if present.
    pub(crate) fn get(&self, src: &str, idx: usize, name: &str) -> Option<usize> {
        self.members(idx)
            .find(|&(k, _)| self.key_is(src, k, name))
            .map(|(_, v)| v)
    }

    /// Whether the key at `k` is `name` (compared without unescaping when it has no escapes).
    #[inline]
    pub(crate) fn key_is(&self, src: &str, k: usize, name: &str) -> bool {
        let n = self.nodes[k];
        if n.escaped {
            return self.str(src, k) == name;
        }
        n.end - n.start == name.len() as u32
            && &src.as_bytes()[n.start as usize..n.end as usize] == name.as_bytes()
    }
}

pub(crate) struct Members<'t> {
    tape: &'t Tape,
    at: usize,
    end: usize,
}

impl Iterator for Members<'_> {
    type Item = (usize, usize);
    fn next(&mut self) -> Option<(usize, usize)> {
        if self.at >= self.end {
            return None;
        }
        let key = self.at;
        let value = key + 1;
        self.at = self.tape.nodes[value].next as usize;
        Some((key, value))
    }
}

pub(crate) struct Elements<'t> {
    tape: &'t Tape,
    at: usize,
    end: usize,
}

impl Iterator for Elements<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.at >= self.end {
            return None;
        }
        let v = self.at;
        self.at = self.tape.nodes[v].next as usize;
        Some(v)
    }
}

/// One member of an object, read by [`ObjectMembers`]: byte ranges into the source.
#[derive(Clone, Debug)]
pub(crate) struct LazyMember {
    /// The key's text as written (without quotes), and whether it holds escapes.
    pub key: std::ops::Range<usize>,
    pub key_escaped: bool,
    /// The value, when it is a string; `None` for other values.
    pub string: Option<StringValue>,
}

/// A string's text as written (without quotes), and whether it holds escapes.
#[derive(Clone, Debug)]
pub(crate) struct StringValue {
    pub text: std::ops::Range<usize>,
    pub escaped: bool,
}

impl LazyMember {
    pub(crate) fn key_is(&self, src: &str, name: &str) -> bool {
        let text = &src[self.key.clone()];
        if self.key_escaped {
            unescape(text) == name
        } else {
            text == name
        }
    }
}

/// The top-level members of the object `src`, read only as far as they are asked for: a
/// caller that needs one early key does not pay for the rest of the item. Values are
/// skipped, not checked beyond finding their end; iteration ends at the first error.
pub(crate) struct ObjectMembers<'s> {
    b: &'s [u8],
    i: usize,
    done: bool,
}

impl<'s> ObjectMembers<'s> {
    pub(crate) fn new(src: &'s str) -> Self {
        let b = src.as_bytes();
        let i = skip_ws(b, 0);
        let is_object = b.get(i) == Some(&b'{');
        ObjectMembers {
            b,
            i: i + 1,
            done: !is_object,
        }
    }

    fn member(&mut self) -> Result<Option<LazyMember>, SyntaxError> {
        let b = self.b;
        let mut i = skip_ws(b, self.i);
        match b.get(i) {
            Some(b'}') => return Ok(None),
            Some(b',') => i = skip_ws(b, i + 1),
            _ => {}
        }
        if b.get(i) != Some(&b'"') {
            return Err(err(i, "expected an object key"));
        }
        let (key_end, key_escaped) = scan_string(b, i + 1)?;
        let key = i + 1..key_end;
        let colon = skip_ws(b, key_end + 1);
        if b.get(colon) != Some(&b':') {
            return Err(err(colon, "expected `:` after an object key"));
        }
        let value = skip_ws(b, colon + 1);
        let (end, string) = if b.get(value) == Some(&b'"') {
            let (end, escaped) = scan_string(b, value + 1)?;
            let text = value + 1..end;
            (end + 1, Some(StringValue { text, escaped }))
        } else {
            (skip_value(b, value)?, None)
        };
        self.i = end;
        Ok(Some(LazyMember {
            key,
            key_escaped,
            string,
        }))
    }
}

impl Iterator for ObjectMembers<'_> {
    type Item = LazyMember;
    fn next(&mut self) -> Option<LazyMember> {
        if self.done {
            return None;
        }
        let member = self.member().ok().flatten();
        self.done = member.is_none();
        member
    }
}

/// The index just past the value at `i`, which is not a string. Containers are skipped by
/// their brackets and strings, without checking what is between.
fn skip_value(b: &[u8], i: usize) -> Result<usize, SyntaxError> {
    match b.get(i) {
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j) {
                    None => return Err(err(j, "unexpected end of input inside a container")),
                    Some(b'"') => {
                        j = scan_string(b, j + 1)?.0;
                    }
                    Some(b'{' | b'[') => {
                        depth += 1;
                        if depth > MAX_DEPTH {
                            return Err(err(j, "nesting deeper than 256 levels"));
                        }
                    }
                    Some(b'}' | b']') => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(j + 1);
                        }
                    }
                    Some(_) => {}
                }
                j += 1;
            }
        }
        Some(b'-' | b'0'..=b'9') => scan_number(b, i),
        Some(b't') if b[i..].starts_with(b"true") => Ok(i + 4),
        Some(b'f') if b[i..].starts_with(b"false") => Ok(i + 5),
        Some(b'n') if b[i..].starts_with(b"null") => Ok(i + 4),
        _ => Err(err(i, "expected a JSON value")),
    }
}

fn err(offset: usize, message: &'static str) -> SyntaxError {
    SyntaxError { offset, message }
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\r' | b'\t') {
        i += 1;
    }
    i
}

/// From just after an opening quote, finds the closing quote; checks escapes and control
/// characters. Returns (index of the closing quote, had escapes).
#[inline]
fn scan_string(b: &[u8], mut i: usize) -> Result<(usize, bool), SyntaxError> {
    let mut escaped = false;
    loop {
        // Most strings are short: look at the first bytes one by one before paying for a
        // vectorised search.
        let short_end = b.len().min(i + 16);
        let mut j = i;
        while j < short_end && b[j] != b'"' && b[j] != b'\\' && b[j] >= 0x20 {
            j += 1;
        }
        if j == short_end && j < b.len() {
            let Some(off) = memchr::memchr2(b'"', b'\\', &b[j..]) else {
                return Err(err(b.len(), "unterminated string"));
            };
            let end = j + off;
            if let Some(k) = b[j..end].iter().position(|&c| c < 0x20) {
                return Err(err(j + k, "control character in a string"));
            }
            j = end;
        }
        match b.get(j) {
            None => return Err(err(b.len(), "unterminated string")),
            Some(b'"') => return Ok((j, escaped)),
            Some(b'\\') => {}
            Some(_) => return Err(err(j, "control character in a string")),
        }
        escaped = true;
        match b.get(j + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i = j + 2,
            Some(b'u') => {
                let hex = b
                    .get(j + 2..j + 6)
                    .ok_or_else(|| err(j, "truncated \\u escape"))?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err(err(j, "invalid \\u escape"));
                }
                i = j + 6;
            }
            _ => return Err(err(j, "invalid escape")),
        }
    }
}

fn scan_number(b: &[u8], start: usize) -> Result<usize, SyntaxError> {
    let mut i = start;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while matches!(b.get(i), Some(b'0'..=b'9')) {
                i += 1;
            }
        }
        _ => return Err(err(i, "invalid number")),
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !matches!(b.get(i), Some(b'0'..=b'9')) {
            return Err(err(i, "invalid number: no digit after `.`"));
        }
        while matches!(b.get(i), Some(b'0'..=b'9')) {
            i += 1;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !matches!(b.get(i), Some(b'0'..=b'9')) {
            return Err(err(i, "invalid number: no digit in exponent"));
        }
        while matches!(b.get(i), Some(b'0'..=b'9')) {
            i += 1;
        }
    }
    Ok(i)
}

/// Unescapes the text of a string that [`scan_string`] accepted. A lone surrogate escape
/// becomes U+FFFD here; the canonical form keeps it distinct (see `canonical`).
pub(crate) fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    unescape_into(text, &mut out);
    out
}

/// As [`unescape`], appending to `out`.
pub(crate) fn unescape_into(text: &str, out: &mut String) {
    for piece in Unescaped::new(text) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Char(c) => out.push(c),
            Piece::LoneSurrogate(_) => out.push('\u{FFFD}'),
        }
    }
}

pub(crate) enum Piece<'a> {
    Text(&'a str),
    Char(char),
    LoneSurrogate(u16),
}

/// Walks an escaped string text as runs of plain text and decoded escapes.
pub(crate) struct Unescaped<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Unescaped<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Unescaped { text, at: 0 }
    }

    fn hex4(&self, i: usize) -> u16 {
        u16::from_str_radix(&self.text[i..i + 4], 16).unwrap_or(0xFFFD)
    }
}

impl<'a> Iterator for Unescaped<'a> {
    type Item = Piece<'a>;
    fn next(&mut self) -> Option<Piece<'a>> {
        let b = self.text.as_bytes();
        if self.at >= b.len() {
            return None;
        }
        if b[self.at] != b'\\' {
            let end = memchr::memchr(b'\\', &b[self.at..]).map_or(b.len(), |o| self.at + o);
            let t = &self.text[self.at..end];
            self.at = end;
            return Some(Piece::Text(t));
        }
        let c = b[self.at + 1];
        self.at += 2;
        let ch = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            _ => {
                let hi = self.hex4(self.at);
                self.at += 4;
                if (0xD800..0xDC00).contains(&hi) {
                    let follows =
                        b.get(self.at) == Some(&b'\\') && b.get(self.at + 1) == Some(&b'u');
                    if follows {
                        let lo = self.hex4(self.at + 2);
                        if (0xDC00..0xE000).contains(&lo) {
                            self.at += 6;
                            let code =
                                0x10000 + (((hi as u32) - 0xD800) << 10) + ((lo as u32) - 0xDC00);
                            return Some(Piece::Char(char::from_u32(code).unwrap_or('\u{FFFD}')));
                        }
                    }
                    return Some(Piece::LoneSurrogate(hi));
                }
                if (0xDC00..0xE000).contains(&hi) {
                    return Some(Piece::LoneSurrogate(hi));
                }
                char::from_u32(hi as u32).unwrap_or('\u{FFFD}')
            }
        };
        Some(Piece::Char(ch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Tape, SyntaxError> {
        let mut t = Tape::default();
        t.parse(s).map(|_| t)
    }

    #[test]
    fn accepts_json_and_records_ranges() {
        let src = r#" {"a": [1, -2.5e3, "x\"y"], "b": {"c": null, "d": true}, "e": {}} "#;
        let t = parse(src).unwrap();
        assert_eq!(t.nodes[0].tok, Tok::Object);
        assert_eq!(t.nodes[0].next as usize, t.nodes.len());
        let members: Vec<_> = t
            .members(0)
            .map(|(k, _)| t.str(src, k).into_owned())
            .collect();
        assert_eq!(members, ["a", "b", "e"]);
        let a = t.get(src, 0, "a").unwrap();
        let elems: Vec<_> = t.elements(a).map(|e| t.raw(src, e)).collect();
        assert_eq!(elems, ["1", "-2.5e3", r#""x\"y""#]);
        let s = t.elements(a).nth(2).unwrap();
        assert_eq!(t.str(src, s), "x\"y");
        let b = t.get(src, 0, "b").unwrap();
        assert_eq!(t.raw(src, b), r#"{"c": null, "d": true}"#);
    }

    #[test]
    fn refuses_what_is_not_json() {
        for bad in [
            "",
            "{",
            "{\"a\"}",
            "{\"a\":1,}",
            "[1,]",
            "01",
            "1.",
            "-",
            "tru",
            "\"a",
            "{} x",
            "{'a':1}",
            "\"\u{1}\"",
            "\"0123456789abcdefghij\u{1}\"",
            "\"0123456789abcdefghij",
            "\"\\x\"",
            "\"\\u12\"",
            "[1 2]",
            "{\"a\":1 \"b\":2}",
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
        let deep = "[".repeat(300) + &"]".repeat(300);
        assert_eq!(
            parse(&deep).unwrap_err().message,
            "nesting deeper than 256 levels"
        );
    }

    #[test]
    fn unescapes_surrogate_pairs() {
        assert_eq!(unescape(r"a\ud83d\udcafb\n\u00e9"), "a💯b\né");
        assert_eq!(unescape(r"\ud800x"), "\u{FFFD}x");
    }
}
