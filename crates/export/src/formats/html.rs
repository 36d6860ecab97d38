//! HTML: a transcript per conversation and day that opens in any browser. Names, UTC
//! times, replies under their root, edits and deletions marked, reactions with who gave
//! them, inline images and archived copies of shared files from the export's own `files/`
//! folder. Everything from the archive is escaped text; links are plain `http(s)` links
//! or relative paths the export made; a Content-Security-Policy forbids scripts and every
//! outside resource (images load from the export folder only), and an image whose bytes
//! are not archived is a placeholder saying why, never a remote load.

use std::collections::BTreeMap;

use super::{ConversationDay, FormatWriter, Step, one_line, readable_utc, utc};
use crate::content::{ExportedPiece, url_path};
use crate::directory::Person;
use crate::error::ExportError;
use crate::output::{OutputCounts, OutputFile, Outputs};
use crate::selection::Format;
use crate::view::{EventKind, MessageView};

const STYLE: &str = "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f5f5f7;color:#1d1d1f}\
header,main,footer{max-width:60rem;margin:0 auto;padding:0 1.25rem}\
header{padding-top:1.25rem}h1{font-size:1.4rem;margin:0 0 .2rem}.sub{color:#555;margin:0 0 1rem}\
.msg{background:#fff;border:1px solid #ddd;border-radius:8px;padding:.6rem .8rem;margin:.6rem 0}\
.meta{font-size:.85rem;color:#444}.who{font-weight:600;color:#1d1d1f}\
.body{white-space:pre-wrap;overflow-wrap:anywhere;margin:.3rem 0}\
.badge{display:inline-block;font-size:.75rem;border-radius:4px;padding:0 .35rem;margin-left:.35rem;background:#eee}\
.deleted{border-color:#c62828}.deleted .body{text-decoration:line-through;color:#777}.badge.del{background:#fdecea;color:#c62828}\
.badge.edit{background:#e8f0fe;color:#1a56c4}.badge.high{background:#fff4e5;color:#a15c00}\
.replies{margin:.5rem 0 0 1.5rem;border-left:3px solid #ddd;padding-left:.8rem}\
.orphan{color:#555;font-size:.85rem;margin:.8rem 0 0}\
.system{color:#555;font-style:italic;font-size:.9rem;margin:.5rem 0;padding:0 .8rem}\
.reactions,.attachments,.edits{font-size:.85rem;color:#333;margin:.3rem 0}\
.attachments ul,.edits ol{margin:.2rem 0;padding-left:1.2rem}\
.images{margin:.3rem 0}.images img{max-width:100%;max-height:24rem;border:1px solid #ddd;border-radius:4px;margin:.2rem .3rem 0 0}\
.missing{display:inline-block;font-size:.85rem;color:#a15c00;background:#fff4e5;border-radius:4px;padding:.2rem .4rem;margin:.2rem .3rem 0 0}del{color:#888}ins{text-decoration:none;background:#e6f4ea}\
footer{color:#555;font-size:.85rem;padding-bottom:2rem}";

/// Text made safe for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Only web links become links; anything else (`javascript:`, `data:`) stays text.
fn safe_url(url: &str) -> Option<&str> {
    crate::view::is_web_link(url).then_some(url)
}

/// A transcript's path back to the export folder (`html/<date>/<name>.html`).
const TO_ROOT: &str = "../../";

/// A link to an export file from a transcript.
fn export_link(relative: &str) -> String {
    escape(&format!("{TO_ROOT}{}", url_path(relative)))
}

/// A piece's archived copy as a link, or why there is none.
fn archived_copy(piece: &ExportedPiece, what: &str) -> String {
    match &piece.file {
        Some(file) => format!(
            "<a href=\"{}\" title=\"SHA-256 {}\">archived copy</a>",
            export_link(file),
            escape(piece.piece.blob_sha256.as_deref().unwrap_or(""))
        ),
        None => format!(
            "<span class=\"missing\"{}>{what} not archived: {}</span>",
            detail_title(piece),
            escape(piece.status())
        ),
    }
}

/// The archive's detail of why a piece is not stored, as a tooltip.
fn detail_title(piece: &ExportedPiece) -> String {
    piece
        .piece
        .status_detail
        .as_deref()
        .map_or_else(String::new, |d| format!(" title=\"{}\"", escape(d)))
}

/// A transcript is kept in memory, and handed over whole, until it grows past this; then
/// it is written as it goes.
const BUFFERED_BYTES: usize = 4 * 1024 * 1024;

enum Sink {
    Memory(Vec<u8>),
    File(OutputFile),
}

struct Open {
    sink: Sink,
    relative: String,
    messages: u64,
    participants: BTreeMap<String, Person>,
    custodians: BTreeMap<String, ()>,
    /// The thread whose replies are being written, and whether its root is in this file.
    thread: Option<String>,
}

pub(crate) struct HtmlWriter {
    generator: String,
    open: Option<Open>,
}

impl HtmlWriter {
    pub fn new(generator: &str) -> Self {
        HtmlWriter {
            generator: generator.to_string(),
            open: None,
        }
    }
}

fn write(open: &mut Open, text: &str, outputs: &Outputs) -> Result<(), ExportError> {
    if let Sink::Memory(buffer) = &mut open.sink {
        if buffer.len() + text.len() <= BUFFERED_BYTES {
            buffer.extend_from_slice(text.as_bytes());
            return Ok(());
        }
        let mut file = outputs.create(&open.relative)?;
        file.put(buffer)?;
        open.sink = Sink::File(file);
    }
    match &mut open.sink {
        Sink::File(file) => file.put(text.as_bytes()),
        Sink::Memory(_) => Ok(()),
    }
}

/// Closes the replies of the current thread and its root.
fn close_thread(open: &mut Open, outputs: &Outputs) -> Result<(), ExportError> {
    if open.thread.take().is_some() {
        write(open, "</div></article>\n", outputs)?;
    }
    Ok(())
}

fn person_name(person: Option<&Person>) -> String {
    person.map_or_else(|| "(unknown sender)".to_string(), |p| escape(&p.display))
}

/// One message as an `<article>`, left open when it starts a thread (its replies follow).
fn message_html(view: &MessageView<'_>, open_thread: bool) -> String {
    let message = view.message;
    let when = message.created_us().map_or_else(
        || "<span class=\"badge\">time unknown</span>".to_string(),
        |us| format!("<time datetime=\"{}\">{}</time>", utc(us), readable_utc(us)),
    );
    let anchor = escape(message.key());
    if view.kind != EventKind::Message && view.system.is_some() {
        let mut html = format!(
            "<div class=\"system\" id=\"m-{anchor}\">{} &middot; {when}</div>\n",
            escape(&view.text)
        );
        if open_thread {
            html.push_str("<article class=\"msg\"><div class=\"replies\">\n");
        }
        return html;
    }
    let deleted = view.deleted_at_us.is_some();
    let mut html = format!(
        "<article class=\"msg{}\" id=\"m-{anchor}\"><div class=\"meta\"><span class=\"who\">{}</span> {when}",
        if deleted { " deleted" } else { "" },
        person_name(view.sender.as_ref())
    );
    if let Some(at) = view.deleted_at_us {
        html.push_str(&format!(
            "<span class=\"badge del\">Deleted {}</span>",
            readable_utc(at)
        ));
    }
    if !view.edits.is_empty() {
        html.push_str("<span class=\"badge edit\">Edited</span>");
    }
    if view.importance_high {
        html.push_str("<span class=\"badge high\">Important</span>");
    }
    if view.kind == EventKind::Unknown {
        let kind = message
            .latest()
            .message_type
            .as_deref()
            .unwrap_or("unknown");
        html.push_str(&format!("<span class=\"badge\">{}</span>", escape(kind)));
    }
    html.push_str("</div>");
    if let Some(subject) = message
        .latest()
        .subject
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        html.push_str(&format!(
            "<div class=\"body\"><strong>{}</strong></div>",
            escape(subject)
        ));
    }
    if deleted && !view.text.is_empty() {
        html.push_str("<div class=\"meta\">Last archived text before the deletion:</div>");
    }
    html.push_str(&format!("<div class=\"body\">{}</div>", escape(&view.text)));
    let images = view.images();
    if !images.is_empty() {
        html.push_str("<div class=\"images\">");
        for image in images {
            // Hosted contents are also code snippets and the like: only images are shown.
            let shown = image
                .piece
                .content_type
                .as_deref()
                .is_none_or(|c| c.trim().to_ascii_lowercase().starts_with("image/"));
            match &image.file {
                Some(file) if shown => {
                    let link = export_link(file);
                    html.push_str(&format!(
                        "<a href=\"{link}\"><img src=\"{link}\" alt=\"{}\"></a>",
                        escape(&image.display_name())
                    ));
                }
                Some(file) => html.push_str(&format!(
                    "<a href=\"{}\">{}</a> ",
                    export_link(file),
                    escape(&image.display_name())
                )),
                None => html.push_str(&format!(
                    "<span class=\"missing\"{}>image not archived: {}</span>",
                    detail_title(image),
                    escape(image.status())
                )),
            }
        }
        html.push_str("</div>");
    }
    let other_files = view.other_files();
    if !view.attachments.is_empty() || !other_files.is_empty() {
        html.push_str("<div class=\"attachments\">Attachments:<ul>");
        for attachment in &view.attachments {
            let label = escape(&one_line(&attachment.display));
            let copy = attachment
                .url
                .as_deref()
                .and_then(|url| view.file_of(url))
                .map_or_else(String::new, |piece| {
                    format!(" &middot; {}", archived_copy(piece, "file"))
                });
            match attachment.url.as_deref().and_then(safe_url) {
                Some(url) => html.push_str(&format!(
                    "<li><a href=\"{}\" rel=\"noreferrer\">{label}</a>{copy}</li>",
                    escape(url)
                )),
                None => html.push_str(&format!("<li>{label}{copy}</li>")),
            }
            if let Some(text) = attachment.text.as_deref().filter(|t| !t.is_empty()) {
                html.push_str(&format!("<div class=\"body\">{}</div>", escape(text)));
            }
        }
        for piece in other_files {
            html.push_str(&format!(
                "<li>{} &middot; {}</li>",
                escape(&piece.display_name()),
                archived_copy(piece, "file")
            ));
        }
        html.push_str("</ul></div>");
    }
    if !view.reactions.is_empty() {
        let reactions: Vec<String> = view
            .reactions
            .iter()
            .map(|r| {
                let mut who: Vec<String> = r.people.iter().map(|p| escape(&p.display)).collect();
                if r.anonymous > 0 {
                    who.push(format!("{} unnamed", r.anonymous));
                }
                format!(
                    "{} &times;{} ({})",
                    escape(&r.value),
                    r.count(),
                    who.join(", ")
                )
            })
            .collect();
        html.push_str(&format!(
            "<div class=\"reactions\">Reactions: {}</div>",
            reactions.join("; ")
        ));
    }
    if !view.edits.is_empty() {
        html.push_str(&format!(
            "<details class=\"edits\" open><summary>Edited {} time{}</summary><ol>",
            view.edits.len(),
            if view.edits.len() == 1 { "" } else { "s" }
        ));
        for edit in &view.edits {
            let when = edit
                .at_us
                .map_or_else(|| "time unknown".to_string(), readable_utc);
            let by = person_name(edit.by.as_ref().or(view.sender.as_ref()));
            let previous = edit.previous.as_deref().map_or_else(
                || "<em>(the earlier text is not in the archive)</em>".to_string(),
                |p| format!("<del>{}</del>", escape(p)),
            );
            let new = edit
                .new
                .as_deref()
                .map_or_else(String::new, |n| format!(" &rarr; <ins>{}</ins>", escape(n)));
            html.push_str(&format!("<li>{when}, {by}: {previous}{new}</li>"));
        }
        html.push_str("</ol></details>");
    }
    if open_thread {
        html.push_str("<div class=\"replies\">\n");
    } else {
        html.push_str("</article>\n");
    }
    html
}

impl FormatWriter for HtmlWriter {
    fn begin(&mut self, day: &ConversationDay<'_>, outputs: &mut Outputs) -> Step {
        let relative = format!("html/{}/{}.html", day.date(), day.conversation.file_stem());
        let mut open = Open {
            sink: Sink::Memory(Vec::new()),
            relative,
            messages: 0,
            participants: BTreeMap::new(),
            custodians: BTreeMap::new(),
            thread: None,
        };
        let title = format!("{} — {} (UTC)", day.display(), day.date());
        let head = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src 'self'\">\n\
             <meta name=\"generator\" content=\"{}\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
             <header><h1>{}</h1><p class=\"sub\">Microsoft Teams {} &middot; {} (times in UTC) &middot; conversation <code>{}</code></p></header>\n<main>\n",
            escape(&self.generator),
            escape(&title),
            escape(&day.display()),
            if day.conversation.is_channel() {
                "channel"
            } else {
                "chat"
            },
            day.date(),
            escape(&day.conversation.id()),
        );
        write(&mut open, &head, outputs)?;
        self.open = Some(open);
        Ok(())
    }

    fn message(&mut self, day: &ConversationDay, view: &MessageView, out: &mut Outputs) -> Step {
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        let message = view.message;
        let is_channel = day.conversation.is_channel();
        match (is_channel, message.reply_to()) {
            (true, None) => {
                close_thread(open, out)?;
                open.thread = Some(message.key().to_string());
                let html = message_html(view, true);
                write(open, &html, out)?;
            }
            (true, Some(root)) => {
                if open.thread.as_deref() != Some(root) {
                    close_thread(open, out)?;
                    // The root was posted on another day (or is not selected).
                    let html = format!(
                        "<p class=\"orphan\">Replies to message <code>{}</code>, which is not in this transcript:</p><article class=\"msg\"><div class=\"replies\">\n",
                        escape(root)
                    );
                    write(open, &html, out)?;
                    open.thread = Some(root.to_string());
                }
                let html = message_html(view, false);
                write(open, &html, out)?;
            }
            (false, _) => {
                let html = message_html(view, false);
                write(open, &html, out)?;
            }
        }
        open.messages += 1;
        for person in view.people() {
            open.participants
                .entry(person.id.clone())
                .or_insert_with(|| person.clone());
        }
        for custodian in message.custodians() {
            if day.selected_custodians.is_empty()
                || day.selected_custodians.iter().any(|c| c == custodian)
            {
                open.custodians.insert(custodian.to_string(), ());
            }
        }
        Ok(())
    }

    fn end(&mut self, day: &ConversationDay<'_>, outputs: &mut Outputs) -> Step {
        let Some(mut open) = self.open.take() else {
            return Ok(());
        };
        close_thread(&mut open, outputs)?;
        let people: Vec<String> = open
            .participants
            .values()
            .map(|p| match &p.email {
                Some(email) => format!("{} &lt;{}&gt;", escape(&p.display), escape(email)),
                None => escape(&p.display),
            })
            .collect();
        let custodians: Vec<String> = open
            .custodians
            .keys()
            .map(|id| escape(&day.directory.person(id, None).display))
            .collect();
        let mut footer = format!(
            "</main>\n<footer><p>{} message{} &middot; Participants: {}</p>",
            open.messages,
            if open.messages == 1 { "" } else { "s" },
            if people.is_empty() {
                "none named".to_string()
            } else {
                people.join(", ")
            }
        );
        if !custodians.is_empty() {
            footer.push_str(&format!("<p>Custodians: {}</p>", custodians.join(", ")));
        }
        footer.push_str(&format!(
            "<p>Exported from the archive by {}.</p></footer>\n</body>\n</html>\n",
            escape(&self.generator)
        ));
        write(&mut open, &footer, outputs)?;
        let counts = OutputCounts {
            conversation: Some(day.conversation.id()),
            date: Some(day.date()),
            messages: open.messages,
            participants: Some(open.participants.len() as u64),
            ..OutputCounts::default()
        };
        match open.sink {
            Sink::Memory(bytes) => outputs.write_all(&open.relative, bytes, Format::Html, counts),
            Sink::File(file) => outputs.close(file, Format::Html, counts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_only_web_links_are_links() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(
            safe_url("https://contoso.example/a"),
            Some("https://contoso.example/a")
        );
        assert_eq!(safe_url("javascript:alert(1)"), None);
        assert_eq!(safe_url(" JAVASCRIPT:alert(1)"), None);
        assert_eq!(safe_url("data:text/html,x"), None);
    }
}
