//! `mail_messages`: Outlook mail message versions, and delta removals as rows.

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, BooleanBuilder, StringBuilder};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;

use crate::RowContext;
use crate::csdl::{self, Field};
use crate::html::html_to_text_with;
use crate::json::Tok;
use crate::table::{Engine, Extra, ItemError, Layout, common_extras, common_tail};

pub(crate) struct MailTable {
    pub fields: Vec<Field>,
    pub layout: Layout,
}

const FRONT: &[&str] = &[
    "id",
    "custodian_user_id",
    "removed",
    "removed_reason",
    "conversation_id",
    "internet_message_id",
    "subject",
    "received_date_time",
    "sent_date_time",
    "created_date_time",
    "last_modified_date_time",
    "from_email_address_address",
    "from_email_address_name",
    "body_content",
    "body_content_type",
    "body_text",
];

fn extras() -> Vec<Extra> {
    let mut v = vec![
        Extra {
            name: "custodian_user_id",
            data_type: DataType::Utf8,
            nullable: true,
            meaning: "Graph user id of the mailbox the message was read from",
        },
        Extra {
            name: "removed",
            data_type: DataType::Boolean,
            nullable: false,
            meaning: "true for a delta removal (`@removed`): the message left the folder",
        },
        Extra {
            name: "removed_reason",
            data_type: DataType::Utf8,
            nullable: true,
            meaning: "`@removed.reason` of a delta removal (`deleted` or `changed`)",
        },
        Extra {
            name: "body_text",
            data_type: DataType::Utf8,
            nullable: true,
            meaning: "body.content reduced to readable text (HTML bodies through html2text)",
        },
    ];
    v.extend(common_extras(true));
    v
}

pub(crate) static MAIL: LazyLock<MailTable> = LazyLock::new(|| {
    let fields = csdl::mail_message_fields();
    let layout = Layout::new(&fields, FRONT, &extras(), &common_tail(true));
    MailTable { fields, layout }
});

/// Builds `mail_messages` from Graph mail `message` items and delta removals.
pub struct MailMessageBuilder {
    engine: Engine,
    custodian: StringBuilder,
    removed: BooleanBuilder,
    removed_reason: StringBuilder,
    body_text: StringBuilder,
    received: usize,
}

impl Default for MailMessageBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl MailMessageBuilder {
    pub fn new() -> Self {
        let engine = Engine::new(&MAIL.fields);
        let received = engine.child("receivedDateTime");
        MailMessageBuilder {
            engine,
            custodian: StringBuilder::new(),
            removed: BooleanBuilder::new(),
            removed_reason: StringBuilder::new(),
            body_text: StringBuilder::new(),
            received,
        }
    }

    /// Appends one mail item (its exact bytes): a message, or a removal
    /// `{"id", "@removed": {"reason"}}`. Returns the rows appended (1); only an item that
    /// is not a JSON object is refused.
    pub fn append(&mut self, raw: &str, ctx: &RowContext) -> Result<usize, ItemError> {
        self.engine.read(raw)?;
        let id = self.engine.id(raw, 0);
        let row = self.engine.fill(raw, 0, &id);
        let tape = &self.engine.tape;
        let removal = tape
            .get(raw, 0, "@removed")
            .filter(|&r| tape.nodes[r].tok != Tok::Null);
        let day = match removal {
            Some(r) => {
                let reason = match tape.nodes[r].tok {
                    Tok::Object => self.engine.string_member(raw, r, "reason"),
                    _ => None,
                };
                if reason.is_none() {
                    let value = tape.raw(raw, r).to_string();
                    self.engine.issues.push(
                        "@removed".into(),
                        &value,
                        "removal without a `reason` string",
                    );
                }
                self.removed.append_value(true);
                self.removed_reason.append_option(reason);
                crate::time::day_of(ctx.fetched_at.timestamp_micros())
            }
            None => {
                self.removed.append_value(false);
                self.removed_reason.append_null();
                self.engine
                    .partition_day(raw, 0, &[(self.received, "receivedDateTime")], ctx)
            }
        };
        self.custodian.append_option(ctx.custodian_user_id);
        self.append_body_text(raw);
        self.engine
            .finish_row(raw, &row, id.ok().as_deref(), day, ctx, true);
        Ok(1)
    }

    fn append_body_text(&mut self, src: &str) {
        match self.engine.body(src, 0) {
            None => self.body_text.append_null(),
            Some((text, true)) => self
                .body_text
                .append_value(html_to_text_with(&text, &|_| None)),
            Some((text, false)) => self.body_text.append_value(text),
        }
    }

    pub fn len(&self) -> usize {
        self.engine.rows
    }

    pub fn is_empty(&self) -> bool {
        self.engine.rows == 0
    }

    pub fn estimated_bytes(&self) -> usize {
        self.engine.estimated_bytes()
    }

    pub fn finish(&mut self) -> RecordBatch {
        let (graph, common) = self.engine.finish(true);
        let mut extras: Vec<ArrayRef> = vec![
            Arc::new(self.custodian.finish()),
            Arc::new(self.removed.finish()),
            Arc::new(self.removed_reason.finish()),
            Arc::new(self.body_text.finish()),
        ];
        extras.extend(common);
        MAIL.layout.batch(graph, extras)
    }
}
