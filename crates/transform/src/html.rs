//! Teams message HTML reduced to readable text for search (`body_text`).
//!
//! html2text does the HTML work. Teams' own elements are rewritten first so their meaning
//! survives: `<attachment id="...">` becomes `[attachment: name]` (the name from the
//! message's `attachments` when known, else the id), `<emoji alt="...">` becomes its alt
//! text (so does `<customemoji>`), `<systemEventMessage/>` becomes nothing, and the quote of a reply
//! (`<blockquote itemtype="http://schema.skype.com/Reply">`) keeps html2text's `> ` marks.
//! Mentions (`<at id="0">Name</at>`) keep the mentioned name as their text.

use std::borrow::Cow;

/// Bodies with no markup and no entity are text already; html2text is only needed otherwise.
fn is_plain(html: &str) -> bool {
    memchr::memchr2(b'<', b'&', html.as_bytes()).is_none()
}

/// Reduces an HTML body to readable text.
pub fn html_to_text(html: &str) -> String {
    html_to_text_with(html, &|_| None)
}

/// As [`html_to_text`], naming attachments through `attachment_name(id)`.
pub(crate) fn html_to_text_with(
    html: &str,
    attachment_name: &dyn Fn(&str) -> Option<String>,
) -> String {
    if is_plain(html) {
        return collapse_whitespace(html);
    }
    if let Some(text) = simple_teams_html(html, attachment_name) {
        return text;
    }
    with_html2text(html, attachment_name)
}

/// The html2text rendering (used for everything the fast path below does not cover).
pub(crate) fn with_html2text(
    html: &str,
    attachment_name: &dyn Fn(&str) -> Option<String>,
) -> String {
    let prepared = rewrite_teams_elements(html, attachment_name);
    if is_plain(&prepared) {
        return collapse_whitespace(&prepared);
    }
    let text = html2text::config::plain_no_decorate()
        .link_footnotes(false)
        .string_from_read(prepared.as_bytes(), usize::MAX / 4)
        // html2text fails only on pathological nesting; keep the markup then, never nothing.
        .unwrap_or_else(|_| html.to_string());
    tidy(&text)
}

/// Trims trailing spaces of each line and drops leading and trailing blank lines.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.trim_matches('\n').to_string()
}

fn collapse_whitespace(text: &str) -> String {
    text.trim().to_string()
}

/// Replaces Teams' custom elements by plain HTML text with the same meaning.
fn rewrite_teams_elements<'a>(
    html: &'a str,
    attachment_name: &dyn Fn(&str) -> Option<String>,
) -> Cow<'a, str> {
    let bytes = html.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut at = 0;
    while let Some(off) = memchr::memchr(b'<', &bytes[at..]) {
        let start = at + off;
        at = start + 1;
        let Some(tag) = Tag::read(html, start) else {
            continue;
        };
        let replacement = match tag.name.to_ascii_lowercase().as_str() {
            "attachment" if !tag.closing => {
                let id = tag.attr("id").unwrap_or_default();
                let name = attachment_name(&id).unwrap_or_else(|| id.clone());
                Some(format!(" [attachment: {}] ", escape_text(&name)))
            }
            "attachment" => Some(String::new()),
            "emoji" | "customemoji" if !tag.closing => Some(escape_text(
                &tag.attr("alt")
                    .or_else(|| tag.attr("title"))
                    .unwrap_or_default(),
            )),
            "emoji" | "customemoji" => Some(String::new()),
            "systemeventmessage" => Some(String::new()),
            _ => None,
        };
        if let Some(text) = replacement {
            let buf = out.get_or_insert_with(|| String::with_capacity(html.len() + 32));
            buf.push_str(&html[copied..start]);
            buf.push_str(&text);
            copied = tag.end;
            at = tag.end;
        }
    }
    match out {
        None => Cow::Borrowed(html),
        Some(mut buf) => {
            buf.push_str(&html[copied..]);
            Cow::Owned(buf)
        }
    }
}

/// Renders the markup Teams chat bodies are mostly made of (paragraphs, line breaks,
/// inline formatting, mentions, reply quotes, attachments, emoji, images, character
/// references) in one pass, with the same text html2text gives. Returns `None` for anything
/// else (lists, tables, preformatted text, comments, unknown elements or entities), which
/// then goes through html2text: this path exists for speed on the hot path of ingest.
fn simple_teams_html(
    html: &str,
    attachment_name: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let mut r = Renderer {
        out: String::with_capacity(html.len()),
        quote_depth: 0,
        space: false,
        line_start: true,
    };
    let b = html.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let Some(off) = memchr::memchr2(b'<', b'&', &b[i..]) else {
            r.text(&html[i..]);
            break;
        };
        let at = i + off;
        r.text(&html[i..at]);
        if b[at] == b'&' {
            let (c, len) = entity(&html[at..])?;
            r.text(c.encode_utf8(&mut [0u8; 4]));
            i = at + len;
            continue;
        }
        let Some(tag) = Tag::read(html, at) else {
            if html[at..].starts_with("<!") || html[at..].starts_with("<?") {
                return None;
            }
            r.text("<");
            i = at + 1;
            continue;
        };
        i = tag.end;
        match tag.name.to_ascii_lowercase().as_str() {
            "span" | "strong" | "b" | "i" | "em" | "u" | "s" | "strike" | "a" | "font" | "sup"
            | "sub" | "at" | "small" | "big" | "mark" | "ins" | "del" | "code" => {}
            "br" => r.newline(),
            "div" | "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => r.newline(),
            "blockquote" => {
                r.newline();
                if tag.closing {
                    r.quote_depth = r.quote_depth.checked_sub(1)?;
                } else {
                    r.quote_depth += 1;
                }
            }
            "img" if !tag.closing => {
                if let Some(alt) = tag.attr("alt").filter(|a| !a.is_empty()) {
                    r.text(&format!("[{alt}]"));
                }
            }
            "attachment" if !tag.closing => {
                let id = tag.attr("id").unwrap_or_default();
                let name = attachment_name(&id).unwrap_or_else(|| id.clone());
                r.text(&format!(" [attachment: {name}] "));
            }
            "emoji" | "customemoji" if !tag.closing => r.text(
                &tag.attr("alt")
                    .or_else(|| tag.attr("title"))
                    .unwrap_or_default(),
            ),
            "attachment" | "emoji" | "customemoji" | "img" | "systemeventmessage" => {}
            _ => return None,
        }
    }
    let text = r.out.trim_end();
    Some(text.trim_start_matches('\n').to_string())
}

struct Renderer {
    out: String,
    quote_depth: usize,
    /// Whitespace seen since the last character written.
    space: bool,
    line_start: bool,
}

impl Renderer {
    fn text(&mut self, t: &str) {
        let b = t.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_whitespace() {
                self.space = true;
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            let word = &t[start..i];
            if word.is_ascii() {
                self.word(word);
            } else {
                self.chars(word);
            }
        }
    }

    /// Text with non-ASCII characters: Unicode spaces separate words too, and a no-break
    /// space is written as a space.
    fn chars(&mut self, t: &str) {
        let mut buf = [0u8; 4];
        for c in t.chars() {
            if c.is_whitespace() && c != '\u{a0}' {
                self.space = true;
            } else {
                let c = if c == '\u{a0}' { ' ' } else { c };
                self.word(c.encode_utf8(&mut buf));
            }
        }
    }

    fn word(&mut self, w: &str) {
        if self.line_start {
            for _ in 0..self.quote_depth {
                self.out.push_str("> ");
            }
            self.line_start = false;
        } else if self.space {
            self.out.push(' ');
        }
        self.space = false;
        self.out.push_str(w);
    }

    fn newline(&mut self) {
        if !self.line_start {
            self.out.push('\n');
            self.line_start = true;
        }
        self.space = false;
    }
}

/// A character reference at the start of `s`: the character and the reference's length.
fn entity(s: &str) -> Option<(char, usize)> {
    // Byte search: the 12-byte window may end inside a multi-byte character.
    let end = s.as_bytes().iter().take(12).position(|&b| b == b';')?;
    let name = &s[1..end];
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        _ => {
            let code =
                if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                    u32::from_str_radix(hex, 16).ok()?
                } else {
                    name.strip_prefix('#')?.parse().ok()?
                };
            char::from_u32(code).filter(|c| *c != '\0')?
        }
    };
    Some((c, end + 1))
}

fn escape_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A start or end tag read at a `<`.
struct Tag<'a> {
    name: &'a str,
    closing: bool,
    attrs: &'a str,
    /// Index just past the `>`.
    end: usize,
}

impl<'a> Tag<'a> {
    fn read(html: &'a str, start: usize) -> Option<Tag<'a>> {
        let rest = &html[start + 1..];
        let (closing, rest) = match rest.strip_prefix('/') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let name_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if name_len == 0 {
            return None;
        }
        let gt = find_tag_end(rest.as_bytes())?;
        let consumed = html.len() - rest.len();
        let attrs = rest[name_len..gt].trim_end_matches('/');
        Some(Tag {
            name: &rest[..name_len],
            closing,
            attrs,
            end: consumed + gt + 1,
        })
    }

    /// The value of attribute `name` (quoted with `"` or `'`, entities decoded).
    fn attr(&self, name: &str) -> Option<String> {
        let b = self.attrs.as_bytes();
        let mut i = 0;
        while i < b.len() {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let n0 = i;
            while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' {
                i += 1;
            }
            let key = &self.attrs[n0..i];
            let mut value = "";
            if i < b.len() && b[i] == b'=' {
                i += 1;
                if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                    let q = b[i];
                    let v0 = i + 1;
                    let v1 = memchr::memchr(q, &b[v0..]).map_or(b.len(), |o| v0 + o);
                    value = &self.attrs[v0..v1];
                    i = v1 + 1;
                } else {
                    let v0 = i;
                    while i < b.len() && !b[i].is_ascii_whitespace() {
                        i += 1;
                    }
                    value = &self.attrs[v0..i];
                }
            }
            if key.eq_ignore_ascii_case(name) {
                return Some(decode_entities(value));
            }
            if i == n0 {
                i += 1;
            }
        }
        None
    }
}

/// Index of the `>` closing a tag, skipping quoted attribute values.
fn find_tag_end(b: &[u8]) -> Option<usize> {
    let mut quote = None;
    for (i, &c) in b.iter().enumerate() {
        match (quote, c) {
            (None, b'"' | b'\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, b'>') => return Some(i),
            _ => {}
        }
    }
    None
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ampersand_before_multibyte_text_is_not_cut_inside_a_character() {
        assert_eq!(html_to_text("<p>&gt; 日本語 über</p>"), "> 日本語 über");
        assert_eq!(html_to_text("<p>a &日本語語語 b</p>"), "a &日本語語語 b");
    }

    #[test]
    fn plain_text_passes_through() {
        assert_eq!(html_to_text("  hello world "), "hello world");
    }

    #[test]
    fn teams_elements_keep_their_meaning() {
        let names = |id: &str| (id == "a1").then(|| "report.docx".to_string());
        let html = r#"<div><at id="0">Megan Bowen</at> see <attachment id="a1"></attachment><attachment id="zz"></attachment> <emoji id="100" alt="💯" title="Hundred points"></emoji></div>"#;
        let text = html_to_text_with(html, &names);
        assert!(text.contains("Megan Bowen see"), "{text}");
        assert!(text.contains("[attachment: report.docx]"), "{text}");
        assert!(text.contains("[attachment: zz]"), "{text}");
        assert!(text.contains('💯'), "{text}");
        assert_eq!(html_to_text("<systemEventMessage/>"), "");
    }

    /// The words (and their order) html2text gives, without its layout.
    fn words(text: &str) -> Vec<String> {
        text.split_whitespace()
            .filter(|w| *w != ">")
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn fast_path_says_what_html2text_says() {
        let names = |id: &str| (id == "a1").then(|| "report.docx".to_string());
        let samples = [
            r#"<div><blockquote itemscope="" itemtype="http://schema.skype.com/Reply" itemid="1"><strong itemprop="mri" itemid="8:orgid:x">Ada Berg</strong><span itemprop="time" itemid="1"></span><p itemprop="preview">the report is ready</p></blockquote><p>thanks, sounds good</p></div>"#,
            r#"<p>see <b>this</b> &amp; <i>that</i>&nbsp;now</p><attachment id="a1"></attachment>"#,
            r#"<div><at id="0">Megan Bowen</at> can you review &lt;draft&gt; &#39;v2&#x27;?</div>"#,
            r#"<p>Hello<br>world</p><div><div>nested <span style="color:red">red</span></div></div>"#,
            r#"<p>image <img src="https://graph.microsoft.com/v1.0/hostedContents/1/$value" alt="image" width="100"> here</p>"#,
            r#"<div>ok <emoji id="like" alt="👍" title="Like"></emoji></div>"#,
        ];
        for html in samples {
            let fast = simple_teams_html(html, &names)
                .unwrap_or_else(|| panic!("fast path refused {html}"));
            let slow = with_html2text(html, &names);
            assert_eq!(
                words(&fast),
                words(&slow),
                "\nfast: {fast:?}\nhtml2text: {slow:?}"
            );
            assert_eq!(
                fast.contains("> "),
                slow.contains("> "),
                "quote marks: {fast:?} / {slow:?}"
            );
        }
    }

    #[test]
    fn unusual_markup_goes_to_html2text() {
        for html in [
            "<ul><li>a</li></ul>",
            "<table><tr><td>x</td></tr></table>",
            "<!-- c --><p>x</p>",
            "<p>&copy;</p>",
        ] {
            assert!(simple_teams_html(html, &|_| None).is_none(), "{html}");
            assert!(!html_to_text(html).is_empty());
        }
    }
}
