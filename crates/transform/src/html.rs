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
    if html.len() > HTML2TEXT_MAX_BYTES || nesting_depth(html) > HTML2TEXT_MAX_DEPTH {
        return linear_text(html, attachment_name);
    }
    with_html2text(html, attachment_name)
}

/// html2text lays out nested blocks by copying each child's lines into its parent, so its
/// time grows with depth times size: a 160 KB body of nested lists took 5.5 s, 320 KB
/// 23.5 s. Bodies come from anyone who can send mail to a custodian, so html2text only
/// gets bodies it renders quickly (at most this deep and this large); the rest go through
/// [`linear_text`], which reads each byte once. Real Teams and Outlook bodies are far
/// shallower (tables in tables in mail signatures reach a dozen levels).
const HTML2TEXT_MAX_DEPTH: usize = 48;
/// Quote levels shown as `> ` marks; deeper ones are shown as this deep.
const MAX_QUOTE_DEPTH: usize = 8;
const HTML2TEXT_MAX_BYTES: usize = 512 * 1024;

/// Elements that hold no content: they never add a level.
const VOID_ELEMENTS: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

/// How deep elements nest in `html`, counted from start and end tags in one pass (an
/// upper bound: elements whose end tag HTML lets one leave out count as still open).
fn nesting_depth(html: &str) -> usize {
    let bytes = html.as_bytes();
    let (mut depth, mut deepest, mut at) = (0usize, 0usize, 0usize);
    while let Some(off) = memchr::memchr(b'<', &bytes[at..]) {
        let start = at + off;
        at = start + 1;
        let tag = match Markup::read(html, start) {
            Markup::Tag(tag) => tag,
            Markup::Text => continue,
            Markup::Unterminated => break,
        };
        at = tag.end;
        let mut buf = [0u8; 24];
        let name = lower_name(tag.name, &mut buf);
        if VOID_ELEMENTS.contains(&name) || html[..tag.end].ends_with("/>") {
            continue;
        }
        if tag.closing {
            depth = depth.saturating_sub(1);
        } else {
            depth += 1;
            deepest = deepest.max(depth);
        }
    }
    deepest
}

/// Elements whose content is not text for a reader.
const HIDDEN_ELEMENTS: &[&str] = &["script", "style", "head", "title", "template", "noscript"];
/// Elements that end a line where they start and end.
const BLOCK_ELEMENTS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "caption",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
];

/// Any HTML to text in one pass over its bytes, whatever its nesting: block elements
/// end lines, list items and table cells are separated, scripts, styles and comments
/// are dropped, character references are decoded, Teams' elements keep their meaning
/// as in [`simple_teams_html`]. Layout (indentation, table columns) is not kept: the
/// words and their order are, which is what `body_text` is for.
fn linear_text(html: &str, attachment_name: &dyn Fn(&str) -> Option<String>) -> String {
    let mut r = Renderer::with_capacity(html.len() / 2);
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
            match entity(&html[at..]) {
                Some((c, len)) => {
                    r.text(c.encode_utf8(&mut [0u8; 4]));
                    i = at + len;
                }
                None => {
                    r.text("&");
                    i = at + 1;
                }
            }
            continue;
        }
        let rest = &html[at..];
        if rest.starts_with("<!--") {
            i = rest.find("-->").map_or(b.len(), |end| at + end + 3);
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            i = memchr::memchr(b'>', &b[at..]).map_or(b.len(), |end| at + end + 1);
            continue;
        }
        let tag = match Markup::read(html, at) {
            Markup::Tag(tag) => tag,
            Markup::Text => {
                r.text("<");
                i = at + 1;
                continue;
            }
            Markup::Unterminated => break,
        };
        i = tag.end;
        let mut buf = [0u8; 24];
        let name = lower_name(tag.name, &mut buf);
        if HIDDEN_ELEMENTS.contains(&name) && !tag.closing {
            // Skip to the matching end tag (these do not nest).
            let close = format!("</{name}");
            i = find_ascii_case_insensitive(&html[i..], &close).map_or(b.len(), |end| {
                let end = i + end;
                memchr::memchr(b'>', &b[end..]).map_or(b.len(), |gt| end + gt + 1)
            });
            continue;
        }
        match name {
            "blockquote" => {
                r.newline();
                if tag.closing {
                    r.quote_depth = r.quote_depth.saturating_sub(1);
                } else {
                    // Deep quotes would repeat `> ` on every line: a few levels say enough.
                    r.quote_depth = (r.quote_depth + 1).min(MAX_QUOTE_DEPTH);
                }
            }
            "td" | "th" if !tag.closing => r.space = true,
            n if BLOCK_ELEMENTS.contains(&n) => r.newline(),
            "img" | "attachment" | "emoji" | "customemoji" if !tag.closing => {
                r.inline_element(name, &tag, attachment_name);
            }
            _ => {}
        }
    }
    let text = r.out.trim_end();
    text.trim_start_matches('\n').to_string()
}

/// The position of `needle` (ASCII) in `haystack`, ignoring ASCII case.
fn find_ascii_case_insensitive(haystack: &str, needle: &str) -> Option<usize> {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    let first = n.first()?;
    let mut at = 0;
    while let Some(off) = memchr::memchr2(
        first.to_ascii_lowercase(),
        first.to_ascii_uppercase(),
        &h[at..],
    ) {
        let start = at + off;
        if h.len() - start >= n.len() && h[start..start + n.len()].eq_ignore_ascii_case(n) {
            return Some(start);
        }
        at = start + 1;
    }
    None
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
        let tag = match Markup::read(html, start) {
            Markup::Tag(tag) => tag,
            Markup::Text => continue,
            Markup::Unterminated => break,
        };
        let mut buf = [0u8; 24];
        let replacement = match lower_name(tag.name, &mut buf) {
            "attachment" if !tag.closing => Some(format!(
                " [attachment: {}] ",
                escape_text(&tag.attachment_label(attachment_name))
            )),
            "attachment" => Some(String::new()),
            "emoji" | "customemoji" if !tag.closing => Some(escape_text(&tag.emoji_text())),
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
    let mut r = Renderer::with_capacity(html.len());
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
        let tag = match Markup::read(html, at) {
            Markup::Tag(tag) => tag,
            Markup::Text => {
                if html[at..].starts_with("<!") || html[at..].starts_with("<?") {
                    return None;
                }
                r.text("<");
                i = at + 1;
                continue;
            }
            Markup::Unterminated => return None,
        };
        i = tag.end;
        let mut buf = [0u8; 24];
        match lower_name(tag.name, &mut buf) {
            "span" | "strong" | "b" | "i" | "em" | "u" | "s" | "strike" | "a" | "font" | "sup"
            | "sub" | "at" | "small" | "big" | "mark" | "ins" | "del" | "code" => {}
            "br" => r.newline(),
            "div" | "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => r.newline(),
            "blockquote" => {
                r.newline();
                if tag.closing {
                    r.quote_depth = r.quote_depth.checked_sub(1)?;
                } else if r.quote_depth == MAX_QUOTE_DEPTH {
                    // Each line repeats `> ` once per level: deeper quotes go to the
                    // paths that bound it.
                    return None;
                } else {
                    r.quote_depth += 1;
                }
            }
            name @ ("img" | "attachment" | "emoji" | "customemoji") if !tag.closing => {
                r.inline_element(name, &tag, attachment_name);
            }
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
    /// An empty renderer at the start of a line, with room for `capacity` bytes of text.
    fn with_capacity(capacity: usize) -> Renderer {
        Renderer {
            out: String::with_capacity(capacity),
            quote_depth: 0,
            space: false,
            line_start: true,
        }
    }

    /// Writes what an opening `img`, `attachment` or emoji tag stands for in text.
    fn inline_element(
        &mut self,
        name: &str,
        tag: &Tag,
        attachment_name: &dyn Fn(&str) -> Option<String>,
    ) {
        match name {
            "img" => {
                if let Some(alt) = tag.attr("alt").filter(|a| !a.is_empty()) {
                    self.text(&format!("[{alt}]"));
                }
            }
            "attachment" => {
                self.text(&format!(
                    " [attachment: {}] ",
                    tag.attachment_label(attachment_name)
                ));
            }
            "emoji" | "customemoji" => self.text(&tag.emoji_text()),
            _ => {}
        }
    }

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

/// A tag name in lower case, in `buf` (no allocation per tag); names longer than any
/// element this module knows come back empty.
fn lower_name<'b>(name: &str, buf: &'b mut [u8; 24]) -> &'b str {
    let bytes = name.as_bytes();
    if bytes.len() > buf.len() {
        return "";
    }
    for (to, from) in buf.iter_mut().zip(bytes) {
        *to = from.to_ascii_lowercase();
    }
    // Tag names are ASCII alphanumerics (see `Tag::read`).
    std::str::from_utf8(&buf[..bytes.len()]).unwrap_or("")
}

/// A start or end tag read at a `<`.
struct Tag<'a> {
    name: &'a str,
    closing: bool,
    attrs: &'a str,
    /// Index just past the `>`.
    end: usize,
}

/// What a `<` starts.
enum Markup<'a> {
    Tag(Tag<'a>),
    /// Not a tag (`< `, `<3`): a literal `<`.
    Text,
    /// A tag that never ends (no `>` outside quotes): like a browser, everything after
    /// it belongs to it. Stopping here keeps every scan linear; trying the next `<`
    /// instead would read the rest of the input again for each one.
    Unterminated,
}

impl<'a> Markup<'a> {
    fn read(html: &'a str, start: usize) -> Markup<'a> {
        let rest = html.as_bytes()[start + 1..]
            .strip_prefix(b"/")
            .unwrap_or(&html.as_bytes()[start + 1..]);
        if !rest.first().is_some_and(u8::is_ascii_alphanumeric) {
            return Markup::Text;
        }
        match Tag::read(html, start) {
            Some(tag) => Markup::Tag(tag),
            None => Markup::Unterminated,
        }
    }
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

    /// The name of the file an `<attachment id>` points to, or its id when the message
    /// names none.
    fn attachment_label(&self, attachment_name: &dyn Fn(&str) -> Option<String>) -> String {
        let id = self.attr("id").unwrap_or_default();
        attachment_name(&id).unwrap_or(id)
    }

    /// What an `<emoji>` stands for in text: its alt text, else its title.
    fn emoji_text(&self) -> String {
        self.attr("alt")
            .or_else(|| self.attr("title"))
            .unwrap_or_default()
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
    fn deep_or_large_markup_is_read_in_one_pass_with_its_words() {
        let html = format!(
            "<style>p {{color: red}}</style><!-- hidden --><div>{}<p>Dear &amp; <b>team</b></p><table><tr><td>a</td><td>b</td></tr></table><blockquote>quoted</blockquote><script>alert(1)</script>{}</div>",
            "<ul><li>item".repeat(60),
            "</li></ul>".repeat(60)
        );
        assert!(nesting_depth(&html) > HTML2TEXT_MAX_DEPTH);
        let text = html_to_text(&html);
        assert_eq!(
            words(&text),
            ["item"]
                .repeat(60)
                .into_iter()
                .chain(["Dear", "&", "team", "a", "b", "quoted"])
                .map(str::to_string)
                .collect::<Vec<_>>(),
            "{text}"
        );
        assert!(text.contains("> quoted"), "{text}");
        assert_eq!(nesting_depth("<p>a<br>b<img src=x/></p><div/>"), 1);
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
