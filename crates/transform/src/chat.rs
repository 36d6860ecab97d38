//! `chat_messages` and `chat_message_custodians`: chat and channel message versions.

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, Date32Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::{DataType, Field as ArrowField, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::RowContext;
use crate::columns::{tok_name, utc_micros};
use crate::csdl::{self, Field};
use crate::html::html_to_text_with;
use crate::json::Tok;
use crate::table::{Engine, Extra, ItemError, Layout, common_extras, common_tail, exact_text};

pub(crate) struct ChatTable {
    pub fields: Vec<Field>,
    pub layout: Layout,
}

/// The columns that name a chat message, its conversation and its times: the first of
/// `chat_messages`, and the ones people filter by (the archive keeps their statistics).
pub const CHAT_MESSAGE_IDS_AND_TIMES: [&str; 9] = [
    "id",
    "chat_id",
    "team_id",
    "channel_id",
    "reply_to_id",
    "message_type",
    "created_date_time",
    "last_modified_date_time",
    "deleted_date_time",
];

/// The columns that follow [`CHAT_MESSAGE_IDS_AND_TIMES`], in this order.
const AFTER_IDS_AND_TIMES: &[&str] = &[
    "body_content",
    "body_content_type",
    "body_text",
    "from",
    "subject",
    "summary",
    "importance",
    "mentions",
    "attachments",
    "reactions",
    "event_detail",
];

fn extras() -> Vec<Extra> {
    let mut v = vec![Extra {
        name: "body_text",
        data_type: DataType::Utf8,
        nullable: true,
        meaning: "body.content reduced to readable text (HTML bodies through html2text; mentions, reply quotes, attachments and emoji kept readable)",
    }];
    v.extend(common_extras(true));
    v
}

pub(crate) static CHAT: LazyLock<ChatTable> = LazyLock::new(|| {
    let fields = csdl::chat_message_fields();
    let front = [&CHAT_MESSAGE_IDS_AND_TIMES[..], AFTER_IDS_AND_TIMES].concat();
    let layout = Layout::new(&fields, &front, &extras(), &common_tail(true));
    ChatTable { fields, layout }
});

pub(crate) static CUSTODIANS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        ArrowField::new("custodian_user_id", DataType::Utf8, false),
        ArrowField::new("chat_id", DataType::Utf8, true),
        ArrowField::new("id", DataType::Utf8, true),
        ArrowField::new("last_modified_date_time", utc_micros(), true),
        ArrowField::new("content_sha256", DataType::Utf8, false),
        ArrowField::new("run_id", DataType::Utf8, false),
        ArrowField::new("fetched_at", utc_micros(), false),
        ArrowField::new("date", DataType::Date32, false),
    ]))
});

pub(crate) const CUSTODIAN_MEANINGS: &[(&str, &str, &str)] = &[
    (
        "custodian_user_id",
        "",
        "Graph user id of the mailbox whose getAllMessages returned this version",
    ),
    ("chat_id", "chatId", "Graph `chatId` of the message"),
    (
        "id",
        "id",
        "Graph message `id` (null when the item has none)",
    ),
    (
        "last_modified_date_time",
        "lastModifiedDateTime",
        "Graph `lastModifiedDateTime` of the version",
    ),
    (
        "content_sha256",
        "",
        "The version's `content_sha256` in chat_messages",
    ),
    ("run_id", "", "The archiver run that fetched it"),
    ("fetched_at", "", "When the archiver fetched it (UTC)"),
    (
        "date",
        "",
        "Partition: the date of the message row in chat_messages",
    ),
];

/// Rows of `chat_messages` and `chat_message_custodians`, built together.
pub struct ChatBatches {
    pub messages: RecordBatch,
    pub custodians: RecordBatch,
}

/// Builds `chat_messages` (and `chat_message_custodians`) from Graph chatMessage items.
pub struct ChatMessageBuilder {
    engine: Engine,
    body_text: StringBuilder,
    custodians: Custodians,
    created: usize,
    last_modified: usize,
    /// Tape indices of the rows of the item being appended (reused).
    roots: Vec<usize>,
}

#[derive(Default)]
struct Custodians {
    user: StringBuilder,
    chat_id: StringBuilder,
    id: StringBuilder,
    last_modified: TimestampMicrosecondBuilder,
    sha: StringBuilder,
    run_id: StringBuilder,
    fetched_at: TimestampMicrosecondBuilder,
    date: Date32Builder,
    rows: usize,
}

impl Default for ChatMessageBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChatMessageBuilder {
    pub fn new() -> Self {
        let engine = Engine::new(&CHAT.fields);
        let created = engine.child("createdDateTime");
        let last_modified = engine.child("lastModifiedDateTime");
        ChatMessageBuilder {
            engine,
            body_text: StringBuilder::new(),
            custodians: Custodians::default(),
            created,
            last_modified,
            roots: Vec::new(),
        }
    }

    /// Appends one chatMessage item (its exact bytes) and any replies expanded inside it.
    /// Returns the number of message rows appended. Only an item that is not a JSON
    /// object is refused, and then nothing is appended.
    pub fn append(&mut self, raw: &str, ctx: &RowContext) -> Result<usize, ItemError> {
        self.engine.read(raw)?;
        // The item, then its expanded replies (depth first). A reply that is not an object
        // cannot be a row; its parent records it and keeps it in raw_json.
        let mut roots = std::mem::take(&mut self.roots);
        roots.clear();
        roots.push(0);
        let mut i = 0;
        while i < roots.len() {
            if let Some(replies) = self.engine.tape.get(raw, roots[i], "replies")
                && self.engine.tape.nodes[replies].tok == Tok::Array
            {
                let tape = &self.engine.tape;
                roots.extend(
                    tape.elements(replies)
                        .filter(|&r| tape.nodes[r].tok == Tok::Object),
                );
            }
            i += 1;
        }
        for &idx in &roots {
            let slice = if idx == 0 {
                raw
            } else {
                self.engine.tape.raw(raw, idx)
            };
            self.append_row(raw, idx, slice, ctx);
        }
        let rows = roots.len();
        self.roots = roots;
        Ok(rows)
    }

    fn append_row(&mut self, src: &str, idx: usize, slice: &str, ctx: &RowContext) {
        let id = self.engine.id(src, idx);
        let row = self.engine.fill(src, idx, &id);
        if let Some(replies) = self.engine.tape.get(src, idx, "replies") {
            let tape = &self.engine.tape;
            match tape.nodes[replies].tok {
                Tok::Array => {
                    for (n, r) in tape.elements(replies).enumerate() {
                        let tok = tape.nodes[r].tok;
                        if tok != Tok::Object {
                            self.engine.issues.push(
                                format!("replies[{n}]"),
                                tape.raw(src, r),
                                format!(
                                    "expected a message object, found {}: not a row of its own",
                                    tok_name(tok)
                                ),
                            );
                        }
                    }
                }
                Tok::Null => {}
                _ => self.engine.issues.push(
                    "replies".into(),
                    tape.raw(src, replies),
                    "expected an array of messages",
                ),
            }
        }
        self.append_body_text(src, idx);
        let day = self.engine.partition_day(
            src,
            idx,
            &[
                (self.created, "createdDateTime"),
                (self.last_modified, "lastModifiedDateTime"),
            ],
            ctx,
        );
        let id = id.ok();
        if let Some(custodian) = ctx.custodian_user_id {
            let c = &mut self.custodians;
            c.user.append_value(custodian);
            c.chat_id
                .append_option(self.engine.string_member(src, idx, "chatId"));
            c.id.append_option(id.as_deref());
            c.last_modified
                .append_option(self.engine.timestamp(self.last_modified));
            c.sha.append_value(row.sha());
            c.run_id.append_value(ctx.run_id);
            c.fetched_at.append_value(ctx.fetched_at.timestamp_micros());
            c.date.append_value(day);
            c.rows += 1;
        }
        self.engine
            .finish_row(slice, &row, id.as_deref(), day, ctx, true);
    }

    fn append_body_text(&mut self, src: &str, idx: usize) {
        let Some((text, is_html)) = self.engine.body(src, idx) else {
            self.body_text.append_null();
            return;
        };
        if !is_html {
            self.body_text.append_value(text);
            return;
        }
        let tape = &self.engine.tape;
        let attachments = tape
            .get(src, idx, "attachments")
            .filter(|&a| tape.nodes[a].tok == Tok::Array);
        let name_of = |id: &str| -> Option<String> {
            let list = attachments?;
            tape.elements(list)
                .filter(|&e| tape.nodes[e].tok == Tok::Object)
                .find(|&e| {
                    tape.get(src, e, "id")
                        .is_some_and(|v| tape.nodes[v].tok == Tok::Str && tape.str(src, v) == id)
                })
                .and_then(|e| tape.get(src, e, "name"))
                .filter(|&n| tape.nodes[n].tok == Tok::Str)
                .map(|n| tape.str(src, n).into_owned())
        };
        self.body_text
            .append_value(html_to_text_with(&text, &name_of));
    }

    /// Message rows appended since the last `finish`.
    pub fn len(&self) -> usize {
        self.engine.rows
    }

    pub fn is_empty(&self) -> bool {
        self.engine.rows == 0
    }

    /// Rough memory the finished batches will take, for flushing by size.
    pub fn estimated_bytes(&self) -> usize {
        self.engine.estimated_bytes() + self.custodians.rows * 200
    }

    /// The rows appended so far as record batches; the builder is empty again afterwards.
    pub fn finish(&mut self) -> ChatBatches {
        let (graph, common) = self.engine.finish(true);
        let body_text = exact_text(Arc::new(self.body_text.finish()));
        let mut extras: Vec<ArrayRef> = vec![body_text];
        extras.extend(common);
        let messages = CHAT.layout.batch(graph, extras);
        let c = &mut self.custodians;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(c.user.finish()),
            Arc::new(c.chat_id.finish()),
            Arc::new(c.id.finish()),
            Arc::new(c.last_modified.finish().with_timezone("UTC")),
            Arc::new(c.sha.finish()),
            Arc::new(c.run_id.finish()),
            Arc::new(c.fetched_at.finish().with_timezone("UTC")),
            Arc::new(c.date.finish()),
        ];
        c.rows = 0;
        let custodians = RecordBatch::try_new(CUSTODIANS.clone(), columns)
            .expect("custodian columns match their schema");
        ChatBatches {
            messages,
            custodians,
        }
    }
}
