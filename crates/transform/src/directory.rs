//! `directory_users` and `directory_chats`: small snapshots of who is who and which chat is
//! which, so exports can name people and conversations. The fields are the few Graph `user`
//! and `chat` (`$expand=members`) properties exports need; everything else stays in
//! `raw_json`. Both are partitioned by the day they were fetched.

use std::sync::LazyLock;

use arrow::array::ArrayRef;
use arrow::record_batch::RecordBatch;

use crate::RowContext;
use crate::csdl::{Field, Kind, Scalar};
use crate::table::{Engine, Extra, ItemError, Layout, common_extras, common_tail};

pub(crate) struct DirectoryTable {
    pub fields: Vec<Field>,
    pub layout: Layout,
}

fn string(json: &str) -> Field {
    Field::scalar(json, "Edm.String", Scalar::Utf8)
}

fn timestamp(json: &str) -> Field {
    Field::scalar(json, "Edm.DateTimeOffset", Scalar::Timestamp)
}

fn sorted(mut fields: Vec<Field>) -> Vec<Field> {
    fields.sort_by(|a, b| a.json.cmp(&b.json));
    fields
}

fn directory_extras() -> Vec<Extra> {
    let mut extras = common_extras(false);
    for e in &mut extras {
        if e.name == "date" {
            e.meaning = "Partition: UTC day the snapshot was fetched";
        }
    }
    extras
}

pub(crate) static USERS: LazyLock<DirectoryTable> = LazyLock::new(|| {
    let fields = sorted(vec![
        string("id"),
        string("displayName"),
        string("mail"),
        string("userPrincipalName"),
    ]);
    let layout = Layout::new(
        &fields,
        &["id", "display_name", "mail", "user_principal_name"],
        &directory_extras(),
        &common_tail(false),
    );
    DirectoryTable { fields, layout }
});

pub(crate) static CHATS: LazyLock<DirectoryTable> = LazyLock::new(|| {
    // conversationMember / aadUserConversationMember, as `$expand=members` returns them.
    let member = Field {
        json: String::new(),
        name: "element".into(),
        csdl_type: "aadUserConversationMember".into(),
        kind: Kind::Struct(sorted(vec![
            string("userId"),
            string("displayName"),
            string("email"),
            Field {
                json: "roles".into(),
                name: "roles".into(),
                csdl_type: "Collection(Edm.String)".into(),
                kind: Kind::List(Box::new(Field::scalar("", "Edm.String", Scalar::Utf8))),
                flatten: true,
            },
            timestamp("visibleHistoryStartDateTime"),
        ])),
        flatten: true,
    };
    let members = Field {
        json: "members".into(),
        name: "members".into(),
        csdl_type: "Collection(conversationMember)".into(),
        kind: Kind::List(Box::new(member)),
        flatten: true,
    };
    let fields = sorted(vec![
        string("id"),
        string("topic"),
        string("chatType"),
        timestamp("createdDateTime"),
        timestamp("lastUpdatedDateTime"),
        string("webUrl"),
        members,
    ]);
    let front = [
        "id",
        "topic",
        "chat_type",
        "created_date_time",
        "last_updated_date_time",
        "web_url",
        "members",
    ];
    let layout = Layout::new(&fields, &front, &directory_extras(), &common_tail(false));
    DirectoryTable { fields, layout }
});

/// The shared shape of the two directory builders.
struct Snapshot {
    engine: Engine,
    table: &'static DirectoryTable,
}

impl Snapshot {
    fn new(table: &'static DirectoryTable) -> Snapshot {
        Snapshot {
            engine: Engine::new(&table.fields),
            table,
        }
    }

    fn append(&mut self, raw: &str, ctx: &RowContext) -> Result<usize, ItemError> {
        self.engine.read(raw)?;
        let id = self.engine.id(raw, 0);
        let row = self.engine.fill(raw, 0, &id);
        let day = crate::time::day_of(ctx.fetched_at.timestamp_micros());
        self.engine
            .finish_row(raw, &row, id.ok().as_deref(), day, ctx, false);
        Ok(1)
    }

    fn finish(&mut self) -> RecordBatch {
        let (graph, extras): (Vec<ArrayRef>, Vec<ArrayRef>) = self.engine.finish(false);
        self.table.layout.batch(graph, extras)
    }
}

macro_rules! directory_builder {
    ($name:ident, $table:ident, $what:literal) => {
        #[doc = concat!("Builds `", $what, "` from Graph items.")]
        pub struct $name(Snapshot);

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $name {
            pub fn new() -> Self {
                $name(Snapshot::new(&$table))
            }

            /// Appends one item (its exact bytes). Returns the rows appended (1).
            pub fn append(&mut self, raw: &str, ctx: &RowContext) -> Result<usize, ItemError> {
                self.0.append(raw, ctx)
            }

            pub fn len(&self) -> usize {
                self.0.engine.rows
            }

            pub fn is_empty(&self) -> bool {
                self.0.engine.rows == 0
            }

            pub fn estimated_bytes(&self) -> usize {
                self.0.engine.estimated_bytes()
            }

            pub fn finish(&mut self) -> RecordBatch {
                self.0.finish()
            }
        }
    };
}

directory_builder!(DirectoryUserBuilder, USERS, "directory_users");
directory_builder!(DirectoryChatBuilder, CHATS, "directory_chats");
