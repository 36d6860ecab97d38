//! The `schemas/` folder: each table's Arrow schema as JSON, a Markdown column reference per
//! table, and SQL views for DuckDB and Spark. Generated from the code; a test keeps the
//! committed copy equal to it.

use std::fmt::Write as _;

use arrow::datatypes::{DataType, Field as ArrowField, SchemaRef};
use serde_json::{Value, json};

use crate::raw_only::{CHAT_MESSAGES_RAW_ONLY, MAIL_MESSAGES_RAW_ONLY, RawOnly};
use crate::table::ColumnDoc;

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaFile {
    /// Path relative to `schemas/`.
    pub path: &'static str,
    pub contents: String,
}

struct Table {
    name: &'static str,
    /// Folder under the archive root.
    folder: &'static str,
    about: &'static str,
    schema: SchemaRef,
    docs: Vec<ColumnDoc>,
    views: Option<Views>,
    /// What Graph sends that only `raw_json` holds.
    raw_only: &'static [RawOnly],
}

/// How the all-versions and latest views of a table pick their rows.
struct Views {
    /// Columns that identify one stored version (two shards may both store it).
    version: &'static [&'static str],
    /// Columns that identify one message, whose latest version the latest view keeps.
    message: &'static [&'static str],
    /// Orders a message's versions, latest first.
    latest_first: &'static str,
}

fn tables() -> Vec<Table> {
    let custodian_docs = crate::chat::CUSTODIAN_MEANINGS
        .iter()
        .zip(crate::chat::CUSTODIANS.fields().iter())
        .map(|((name, path, meaning), f)| ColumnDoc {
            name: name.to_string(),
            path: path.to_string(),
            data_type: f.data_type().clone(),
            nullable: f.is_nullable(),
            meaning: meaning.to_string(),
        })
        .collect();
    let latest = "last_modified_date_time DESC NULLS LAST, fetched_at DESC, content_sha256";
    vec![
        Table {
            name: "chat_messages",
            folder: "chat_messages",
            about: "One row per version of a Teams chat or channel message (Graph `chatMessage`, v1.0 and beta properties). Expanded replies are rows of their own.",
            schema: crate::chat_messages_schema(),
            docs: crate::chat::CHAT.layout.docs.clone(),
            views: Some(Views {
                version: &["content_sha256"],
                message: &["chat_id", "team_id", "channel_id", "id"],
                latest_first: latest,
            }),
            raw_only: CHAT_MESSAGES_RAW_ONLY,
        },
        Table {
            name: "chat_message_custodians",
            folder: "chat_message_custodians",
            about: "One row per (custodian, chat message version): whose mailbox held which version.",
            schema: crate::chat_message_custodians_schema(),
            docs: custodian_docs,
            views: Some(Views {
                version: &["custodian_user_id", "content_sha256"],
                message: &["custodian_user_id", "chat_id", "id"],
                latest_first: latest,
            }),
            raw_only: &[],
        },
        Table {
            name: "mail_messages",
            folder: "mail_messages",
            about: "One row per version of an Outlook mail message (Graph `message`, v1.0), and one per delta removal (`removed = true`).",
            schema: crate::mail_messages_schema(),
            docs: crate::mail::MAIL.layout.docs.clone(),
            views: Some(Views {
                version: &["content_sha256"],
                message: &["custodian_user_id", "id"],
                // A removal has no lastModifiedDateTime: it is as recent as when it was seen.
                latest_first: "coalesce(last_modified_date_time, fetched_at) DESC, fetched_at DESC, content_sha256",
            }),
            raw_only: MAIL_MESSAGES_RAW_ONLY,
        },
        Table {
            name: "message_contents",
            folder: "message_contents",
            about: "One row per (message version, piece it points to): inline images, files and mail attachments, with the SHA-256 of the stored bytes or why they were not stored.",
            schema: crate::message_contents_schema(),
            docs: crate::content::message_contents_docs(),
            views: Some(Views {
                version: &["content_sha256"],
                message: &["message_content_sha256", "kind", "reference"],
                latest_first: "fetched_at DESC, content_sha256",
            }),
            raw_only: &[],
        },
        Table {
            name: "directory_users",
            folder: "directory/users",
            about: "Snapshots of Graph `user` (id, names, mail), one row per distinct content, by fetch day.",
            schema: crate::directory_users_schema(),
            docs: crate::directory::USERS.layout.docs.clone(),
            views: Some(Views {
                version: &["content_sha256"],
                message: &["id"],
                latest_first: "fetched_at DESC, content_sha256",
            }),
            raw_only: &[],
        },
        Table {
            name: "directory_chats",
            folder: "directory/chats",
            about: "Snapshots of Graph `chat` with `$expand=members` (topic, type, members), by fetch day.",
            schema: crate::directory_chats_schema(),
            docs: crate::directory::CHATS.layout.docs.clone(),
            views: Some(Views {
                version: &["content_sha256"],
                message: &["id"],
                latest_first: "fetched_at DESC, content_sha256",
            }),
            raw_only: &[],
        },
    ]
}

/// Every file of `schemas/`, in a fixed order.
pub fn schema_files() -> Vec<SchemaFile> {
    let tables = tables();
    let mut files = Vec::new();
    for t in &tables {
        files.push(SchemaFile {
            path: json_path(t.name),
            contents: schema_json(&t.schema),
        });
        files.push(SchemaFile {
            path: md_path(t.name),
            contents: column_reference(t),
        });
    }
    files.push(SchemaFile {
        path: "duckdb/views.sql",
        contents: duckdb_views(&tables),
    });
    files.push(SchemaFile {
        path: "spark/views.sql",
        contents: spark_views(&tables),
    });
    files
}

fn json_path(table: &str) -> &'static str {
    match table {
        "chat_messages" => "arrow/chat_messages.json",
        "chat_message_custodians" => "arrow/chat_message_custodians.json",
        "mail_messages" => "arrow/mail_messages.json",
        "message_contents" => "arrow/message_contents.json",
        "directory_users" => "arrow/directory_users.json",
        _ => "arrow/directory_chats.json",
    }
}

fn md_path(table: &str) -> &'static str {
    match table {
        "chat_messages" => "columns/chat_messages.md",
        "chat_message_custodians" => "columns/chat_message_custodians.md",
        "mail_messages" => "columns/mail_messages.md",
        "message_contents" => "columns/message_contents.md",
        "directory_users" => "columns/directory_users.md",
        _ => "columns/directory_chats.md",
    }
}

fn type_json(dt: &DataType) -> Value {
    match dt {
        DataType::Struct(fields) => json!({
            "type": "struct",
            "fields": fields.iter().map(|f| field_json(f)).collect::<Vec<_>>(),
        }),
        DataType::List(element) => json!({ "type": "list", "element": field_json(element) }),
        other => json!({ "type": type_name(other) }),
    }
}

fn field_json(f: &ArrowField) -> Value {
    let mut v = type_json(f.data_type());
    let obj = v.as_object_mut().expect("type_json gives an object");
    obj.insert("name".into(), json!(f.name()));
    obj.insert("nullable".into(), json!(f.is_nullable()));
    // Keep a stable key order: name, type, nullable, then nested parts.
    let mut ordered = serde_json::Map::new();
    for key in ["name", "type", "nullable", "fields", "element"] {
        if let Some(x) = obj.remove(key) {
            ordered.insert(key.into(), x);
        }
    }
    Value::Object(ordered)
}

fn type_name(dt: &DataType) -> String {
    match dt {
        DataType::Utf8 => "utf8".into(),
        DataType::Boolean => "bool".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::Float64 => "float64".into(),
        DataType::Date32 => "date32".into(),
        DataType::Binary => "binary".into(),
        DataType::Timestamp(unit, tz) => {
            let unit = match unit {
                arrow::datatypes::TimeUnit::Second => "s",
                arrow::datatypes::TimeUnit::Millisecond => "ms",
                arrow::datatypes::TimeUnit::Microsecond => "us",
                arrow::datatypes::TimeUnit::Nanosecond => "ns",
            };
            match tz {
                Some(tz) => format!("timestamp[{unit}, {tz}]"),
                None => format!("timestamp[{unit}]"),
            }
        }
        DataType::List(_) => "list".into(),
        DataType::Struct(_) => "struct".into(),
        other => other.to_string(),
    }
}

fn schema_json(schema: &SchemaRef) -> String {
    let fields: Vec<Value> = schema.fields().iter().map(|f| field_json(f)).collect();
    let mut text =
        serde_json::to_string_pretty(&json!({ "fields": fields })).expect("JSON values serialise");
    text.push('\n');
    text
}

fn short_type(dt: &DataType) -> String {
    match dt {
        DataType::List(e) => format!("list<{}>", short_type(e.data_type())),
        DataType::Struct(_) => "struct".into(),
        other => type_name(other),
    }
}

/// Rows for the fields nested in a list or struct column, named by path
/// (`mentions[].mentioned.user.display_name`).
fn nested_rows(out: &mut String, name: &str, dt: &DataType) {
    match dt {
        DataType::List(e) => nested_rows(out, &format!("{name}[]"), e.data_type()),
        DataType::Struct(fields) => {
            for f in fields {
                let child = format!("{name}.{}", f.name());
                let _ = writeln!(out, "| `{child}` | {} | | |", short_type(f.data_type()));
                nested_rows(out, &child, f.data_type());
            }
        }
        _ => {}
    }
}

fn column_reference(t: &Table) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", t.name);
    let _ = writeln!(out, "{}\n", t.about);
    let _ = writeln!(
        out,
        "Files: `<archive>/{}/date=YYYY-MM-DD/*.parquet`. `date` is the hive partition folder, not a column inside the files. \
         Columns and struct fields are Graph property names in snake_case. Some single-valued structs are \
         flattened into columns named by their path (`body.content` is `body_content`); the others stay structs \
         (`from.user.displayName` is `from.user.display_name`). Every identity is the same small struct \
         (`odata_type`, `id`, `display_name`, `tenant_id`, and a user's `user_identity_type`, an application's \
         `application_identity_type` or a conversation's `conversation_identity_type`). \
         Collections are `list<struct>` with the element field named `element`; fields nested in structs and lists \
         are listed by path under their column. Generated by `teams-archiver schema --out schemas`.\n",
        t.folder
    );
    let _ = writeln!(out, "| column | type | Graph property | meaning |");
    let _ = writeln!(out, "|---|---|---|---|");
    for d in &t.docs {
        let path = if d.path.is_empty() {
            String::new()
        } else {
            format!("`{}`", d.path)
        };
        let null = if d.nullable { "" } else { " (never null)" };
        let _ = writeln!(
            out,
            "| `{}` | {} | {path} | {}{null} |",
            d.name,
            short_type(&d.data_type),
            d.meaning
        );
        nested_rows(&mut out, &d.name, &d.data_type);
    }
    if !t.raw_only.is_empty() {
        let _ = writeln!(
            out,
            "\n## Held only by `raw_json`\n\n\
             What Graph sends here that no column above holds: each path (and everything under it) \
             stays in `raw_json`, byte for byte. Read one with JSON functions, for example in DuckDB \
             `raw_json->>'$.from.device.id'`, in Spark `get_json_object(raw_json, '$.from.device.id')`.\n"
        );
        let _ = writeln!(out, "| Graph path | why no column holds it |");
        let _ = writeln!(out, "|---|---|");
        for entry in t.raw_only {
            let _ = writeln!(out, "| `{}` | {} |", entry.path, entry.why);
        }
    }
    out
}

fn quoted_list(cols: &[&str], quote: char) -> String {
    cols.iter()
        .map(|c| format!("{quote}{c}{quote}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The PARTITION BY list of a latest view: the message columns, and for a row without an
/// `id` its own `content_sha256`, so that rows without ids never stand for one another.
fn message_partition(message: &[&str], quote: char) -> String {
    let mut list = quoted_list(message, quote);
    if message.contains(&"id") {
        list.push_str(&format!(
            ", CASE WHEN {quote}id{quote} IS NULL THEN {quote}content_sha256{quote} END"
        ));
    }
    list
}

fn duckdb_views(tables: &[Table]) -> String {
    let mut out = String::from(
        "-- DuckDB views over a teams-archiver archive (generated by `teams-archiver schema`).\n\
         --\n\
         -- ${ARCHIVE} stands for the archive root, a local folder. Replace it before running, e.g.\n\
         --   sed 's#${ARCHIVE}#/data/archive#g' schemas/duckdb/views.sql | duckdb archive.duckdb\n\
         --\n\
         -- <table>_all_versions returns each stored version once (two shards may store the same\n\
         -- version; rows with equal version columns are the same content). <table>_latest keeps the\n\
         -- latest version of each message (each user or chat for the directory tables); a row\n\
         -- without an id is a message of its own.\n\
         --\n\
         -- Files of every schema version are read side by side, by column name (union_by_name).\n\
         -- What no column holds stays in raw_json (schemas/columns/<table>.md lists it), e.g.\n\
         --   SELECT raw_json->>'$.from.device.id' FROM chat_messages_latest;\n\
         --\n\
         -- DuckDB reads a view's files when it creates it: leave out the views of a table the\n\
         -- archive has no files for (mail_messages without `--source mail`, message_contents\n\
         -- with `--content none`).\n",
    );
    for t in tables {
        let Some(v) = &t.views else { continue };
        let _ = write!(
            out,
            "\nCREATE OR REPLACE VIEW {name}_all_versions AS\n\
             SELECT * EXCLUDE (version_rank) FROM (\n    \
                 SELECT *, row_number() OVER (PARTITION BY {version} ORDER BY fetched_at, run_id) AS version_rank\n    \
                 FROM read_parquet('${{ARCHIVE}}/{folder}/*/*.parquet', hive_partitioning = true, union_by_name = true)\n\
             ) WHERE version_rank = 1;\n\
             \n\
             CREATE OR REPLACE VIEW {name}_latest AS\n\
             SELECT * EXCLUDE (latest_rank) FROM (\n    \
                 SELECT *, row_number() OVER (PARTITION BY {message} ORDER BY {latest}) AS latest_rank\n    \
                 FROM {name}_all_versions\n\
             ) WHERE latest_rank = 1;\n",
            name = t.name,
            version = quoted_list(v.version, '"'),
            message = message_partition(v.message, '"'),
            latest = v.latest_first,
            folder = t.folder,
        );
    }
    out
}

fn spark_views(tables: &[Table]) -> String {
    let mut out = String::from(
        "-- Spark SQL views over a teams-archiver archive (generated by `teams-archiver schema`).\n\
         --\n\
         -- ${ARCHIVE} stands for the archive root (a path Spark can read). Spark substitutes it when\n\
         -- the session has it set (SET ARCHIVE=/data/archive; spark.sql.variable.substitute is on by\n\
         -- default), or replace it by hand before running.\n\
         -- `date` is discovered from the date=YYYY-MM-DD folders.\n\
         --\n\
         -- <table>_all_versions returns each stored version once (two shards may store the same\n\
         -- version). <table>_latest keeps the latest version of each message (each user or chat\n\
         -- for the directory tables); a row without an id is a message of its own.\n\
         --\n\
         -- Files of every schema version are read side by side, by column name (mergeSchema).\n\
         -- What no column holds stays in raw_json (schemas/columns/<table>.md lists it), e.g.\n\
         --   SELECT get_json_object(raw_json, '$.from.device.id') FROM chat_messages_latest;\n",
    );
    for t in tables {
        let Some(v) = &t.views else { continue };
        let columns = t
            .schema
            .fields()
            .iter()
            .map(|f| format!("`{}`", f.name()))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = write!(
            out,
            "\nCREATE OR REPLACE TEMPORARY VIEW {name}_files\n\
             USING parquet OPTIONS (path '${{ARCHIVE}}/{folder}', mergeSchema 'true');\n\
             \n\
             CREATE OR REPLACE TEMPORARY VIEW {name}_all_versions AS\n\
             SELECT {columns}\n\
             FROM (\n    \
                 SELECT *, row_number() OVER (PARTITION BY {version} ORDER BY fetched_at, run_id) AS version_rank\n    \
                 FROM {name}_files\n\
             ) WHERE version_rank = 1;\n\
             \n\
             CREATE OR REPLACE TEMPORARY VIEW {name}_latest AS\n\
             SELECT {columns}\n\
             FROM (\n    \
                 SELECT *, row_number() OVER (PARTITION BY {message} ORDER BY {latest}) AS latest_rank\n    \
                 FROM {name}_all_versions\n\
             ) WHERE latest_rank = 1;\n",
            name = t.name,
            folder = t.folder,
            version = quoted_list(v.version, '`'),
            message = message_partition(v.message, '`'),
            latest = v.latest_first,
        );
    }
    out
}
