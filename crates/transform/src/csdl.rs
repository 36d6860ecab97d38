//! Microsoft's CSDL type definitions (copied under `csdl/`) turned into field trees.
//!
//! Derivation rules, applied mechanically:
//! - A type's properties are its own plus those of its base types.
//! - A complex or entity type with derived types is polymorphic: its field set is the union
//!   of the properties of the type and of every type derived from it (transitively), plus an
//!   `odata_type` field holding the item's `@odata.type`.
//! - Name clashes in a union (or between the v1.0 and beta definitions) resolve by
//!   [`merge_fields`]: same JSON name and same kind is one field; two structs merge field by
//!   field; two lists merge their elements; any other pair of different kinds becomes one
//!   `Json` field that keeps the value as JSON text. The result does not depend on the order
//!   in which types are visited, because fields are sorted by JSON name at the end.
//! - An identity (`identity` or any type derived from it) is one small struct wherever it
//!   appears, whatever its declared subtype: [`IDENTITY_PROPERTIES`] and the identity type
//!   of its kind (a user's `userIdentityType`, an application's `applicationIdentityType`),
//!   the properties Teams fills. Other subtypes' properties (SharePoint, communications,
//!   audit, ...) stay in `raw_json`.
//! - An identity set (`identitySet` or a type derived from it) and a mail `recipient` have
//!   their declared type's own properties, not the union of their derived types (a sender
//!   is never an attendee); an identity set's members are identities. An identity set's
//!   `device` is left to `raw_json`: Teams never fills it.
//! - Enumerations are strings (the member name as sent), `Edm.Duration` and other
//!   textual Edm types are strings, `Edm.DateTimeOffset` is a UTC microsecond timestamp,
//!   and an open type that declares no properties (`detailsInfo`) is kept as JSON text.

use std::collections::BTreeMap;

use serde::Deserialize;

/// What a leaf holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scalar {
    Utf8,
    Bool,
    Int32,
    Int64,
    Float64,
    Timestamp,
    Date,
    Binary,
    /// Any JSON value kept as its exact text.
    Json,
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Scalar(Scalar),
    Struct(Vec<Field>),
    List(Box<Field>),
}

/// One property of a Graph type, as a column or struct field.
#[derive(Clone, Debug)]
pub(crate) struct Field {
    /// The JSON key (`displayName`, `@odata.type`).
    pub json: String,
    /// The snake_case name (`display_name`, `odata_type`).
    pub name: String,
    /// The CSDL type it was derived from (`Edm.String`, `identitySet`, `Collection(...)`).
    pub csdl_type: String,
    pub kind: Kind,
    /// For a single-valued struct at the top of a table: its children become columns of
    /// their own (`body_content`), instead of one struct column (`from.user.id`).
    pub flatten: bool,
}

impl Field {
    pub(crate) fn scalar(json: &str, csdl_type: &str, scalar: Scalar) -> Field {
        Field {
            json: json.to_string(),
            name: snake_case(json),
            csdl_type: csdl_type.to_string(),
            kind: Kind::Scalar(scalar),
            flatten: true,
        }
    }
}

/// What an identity names, which decides its identity-type field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IdentityKind {
    User,
    Application,
    Conversation,
    Tag,
    /// An identity whose kind neither its type nor its property says: every field.
    Any,
}

impl IdentityKind {
    /// By the declared type (`teamworkUserIdentity`), else by the property that holds it
    /// (an identity set's `user`, `application`, ...).
    fn of(property: &str, type_name: &str) -> IdentityKind {
        match type_name {
            "teamworkUserIdentity" => return IdentityKind::User,
            "teamworkApplicationIdentity" => return IdentityKind::Application,
            "teamworkConversationIdentity" => return IdentityKind::Conversation,
            "teamworkTagIdentity" => return IdentityKind::Tag,
            _ => {}
        }
        match property {
            "user" => IdentityKind::User,
            "application" => IdentityKind::Application,
            "conversation" => IdentityKind::Conversation,
            "tag" => IdentityKind::Tag,
            _ => IdentityKind::Any,
        }
    }

    /// The identity-type properties Teams sends for this kind.
    fn type_properties(self) -> &'static [&'static str] {
        match self {
            IdentityKind::User => &["userIdentityType"],
            IdentityKind::Application => &["applicationIdentityType"],
            IdentityKind::Conversation => &["conversationIdentityType"],
            IdentityKind::Tag => &[],
            IdentityKind::Any => &[
                "applicationIdentityType",
                "conversationIdentityType",
                "userIdentityType",
            ],
        }
    }
}

/// The properties every identity has, wherever one appears (JSON name; all strings);
/// its kind adds its identity type ([`IdentityKind::type_properties`]).
pub(crate) const IDENTITY_PROPERTIES: &[&str] = &["@odata.type", "displayName", "id", "tenantId"];

fn identity_fields(kind: IdentityKind) -> Vec<Field> {
    let mut fields: Vec<Field> = IDENTITY_PROPERTIES
        .iter()
        .chain(kind.type_properties())
        .map(|json| {
            let csdl_type = if *json == "@odata.type" {
                "odata.type"
            } else {
                "Edm.String"
            };
            Field::scalar(json, csdl_type, Scalar::Utf8)
        })
        .collect();
    sort_fields(&mut fields);
    fields
}

/// Types read as declared, without the properties of the types derived from them.
const NOT_POLYMORPHIC: &[&str] = &["identitySet", "recipient"];

/// Identity set members left to `raw_json`.
const IDENTITY_SET_UNTYPED: &[&str] = &["device"];

#[derive(Deserialize)]
struct Document {
    entity: TypeDef,
    #[serde(rename = "entityTypes", default)]
    entity_types: BTreeMap<String, TypeDef>,
    #[serde(rename = "complexTypes", default)]
    complex_types: BTreeMap<String, TypeDef>,
    #[serde(rename = "enumTypes", default)]
    enum_types: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize, Clone)]
struct TypeDef {
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "baseType", default)]
    base_type: Option<String>,
    #[serde(default)]
    properties: BTreeMap<String, PropertyDef>,
    #[serde(rename = "navigationProperties", default)]
    navigation_properties: BTreeMap<String, PropertyDef>,
    #[serde(rename = "derivedTypes", default)]
    derived_types: Vec<String>,
}

#[derive(Deserialize, Clone)]
struct PropertyDef {
    #[serde(rename = "type")]
    type_name: String,
}

pub(crate) const CHAT_MESSAGE_V1: &str = include_str!("../csdl/chatmessage-csdl-v1.json");
pub(crate) const CHAT_MESSAGE_BETA: &str = include_str!("../csdl/chatmessage-csdl-beta.json");
pub(crate) const MAIL_MESSAGE_V1: &str = include_str!("../csdl/message-csdl-v1.json");

/// Navigation properties that become columns (expanded contents kept with the message).
/// `replies` is not one: expanded replies become rows of their own.
const CHAT_NAVIGATION_COLUMNS: &[&str] = &["hostedContents"];

/// Nesting deeper than this in a type closure means a cycle in the CSDL.
const MAX_TYPE_DEPTH: usize = 12;

struct Model {
    doc: Document,
    root: TypeDef,
}

impl Model {
    fn parse(text: &str) -> Model {
        // The CSDL files are compiled in; a parse failure is a build defect caught by tests.
        let doc: Document = serde_json::from_str(text).expect("embedded CSDL file is valid");
        let root = doc.entity.clone();
        Model { doc, root }
    }

    fn find(&self, name: &str) -> Option<&TypeDef> {
        if self.root.name.as_deref() == Some(name) {
            return Some(&self.root);
        }
        self.doc
            .complex_types
            .get(name)
            .or_else(|| self.doc.entity_types.get(name))
    }

    /// Properties declared on the type and all its base types.
    fn own_properties(&self, def: &TypeDef) -> BTreeMap<String, PropertyDef> {
        let mut props = def.properties.clone();
        let mut base = def.base_type.clone();
        let mut guard = 0;
        while let Some(name) = base {
            guard += 1;
            let Some(b) = self.find(&name) else { break };
            for (k, v) in &b.properties {
                props.entry(k.clone()).or_insert_with(|| v.clone());
            }
            base = b.base_type.clone();
            if guard > MAX_TYPE_DEPTH {
                break;
            }
        }
        props
    }

    /// Whether `name` is `ancestor` or derives from it.
    fn derives_from(&self, name: &str, ancestor: &str) -> bool {
        let mut current = Some(name.to_string());
        let mut guard = 0;
        while let Some(n) = current {
            if n == ancestor {
                return true;
            }
            guard += 1;
            if guard > MAX_TYPE_DEPTH {
                return false;
            }
            current = self.find(&n).and_then(|d| d.base_type.clone());
        }
        false
    }

    /// Every type derived from `name`, transitively, sorted by name.
    fn derived_closure(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut todo = vec![name.to_string()];
        while let Some(n) = todo.pop() {
            if let Some(def) = self.find(&n) {
                for d in &def.derived_types {
                    if self.find(d).is_some() && !out.contains(d) && d != name {
                        out.push(d.clone());
                        todo.push(d.clone());
                    }
                }
            }
        }
        out.sort();
        out
    }

    fn struct_fields(&self, type_name: &str, def: &TypeDef, depth: usize) -> Vec<Field> {
        let derived = self.derived_closure(type_name);
        let mut fields = Vec::new();
        if !derived.is_empty() {
            fields.push(Field::scalar("@odata.type", "odata.type", Scalar::Utf8));
        }
        let own = self.props_to_fields(&self.own_properties(def), depth);
        merge_fields(&mut fields, own);
        for d in &derived {
            let ddef = self.find(d).expect("derived type exists").clone();
            let props = self.own_properties(&ddef);
            merge_fields(&mut fields, self.props_to_fields(&props, depth));
        }
        sort_fields(&mut fields);
        fields
    }

    fn props_to_fields(&self, props: &BTreeMap<String, PropertyDef>, depth: usize) -> Vec<Field> {
        props
            .iter()
            .map(|(json, p)| Field {
                json: json.clone(),
                name: snake_case(json),
                csdl_type: p.type_name.clone(),
                kind: self.kind_of(json, &p.type_name, depth + 1),
                flatten: true,
            })
            .collect()
    }

    /// The kind of property `property`, declared as `type_name`.
    fn kind_of(&self, property: &str, type_name: &str, depth: usize) -> Kind {
        if let Some(inner) = type_name
            .strip_prefix("Collection(")
            .and_then(|t| t.strip_suffix(')'))
        {
            let element = Field {
                json: String::new(),
                name: "element".to_string(),
                csdl_type: inner.to_string(),
                kind: self.kind_of(property, inner, depth),
                flatten: true,
            };
            return Kind::List(Box::new(element));
        }
        if let Some(edm) = type_name.strip_prefix("Edm.") {
            return Kind::Scalar(match edm {
                "Boolean" => Scalar::Bool,
                "Byte" | "SByte" | "Int16" | "Int32" => Scalar::Int32,
                "Int64" => Scalar::Int64,
                "Double" | "Single" | "Decimal" => Scalar::Float64,
                "DateTimeOffset" => Scalar::Timestamp,
                "Date" => Scalar::Date,
                "Binary" => Scalar::Binary,
                _ => Scalar::Utf8,
            });
        }
        if self.doc.enum_types.contains_key(type_name) {
            return Kind::Scalar(Scalar::Utf8);
        }
        let Some(def) = self.find(type_name) else {
            // A type the CSDL excerpt does not define: keep whatever arrives as JSON text.
            return Kind::Scalar(Scalar::Json);
        };
        if depth > MAX_TYPE_DEPTH {
            return Kind::Scalar(Scalar::Json);
        }
        if self.derives_from(type_name, "identity") {
            return Kind::Struct(identity_fields(IdentityKind::of(property, type_name)));
        }
        let def = def.clone();
        if let Some(base) = NOT_POLYMORPHIC
            .iter()
            .find(|base| self.derives_from(type_name, base))
        {
            let mut props = self.own_properties(&def);
            if *base == "identitySet" {
                props.retain(|name, _| !IDENTITY_SET_UNTYPED.contains(&name.as_str()));
            }
            let mut fields = self.props_to_fields(&props, depth);
            sort_fields(&mut fields);
            return Kind::Struct(fields);
        }
        let fields = self.struct_fields(type_name, &def, depth);
        if fields.is_empty() {
            // Nothing declared (an open type such as `detailsInfo`): keep the value as JSON.
            return Kind::Scalar(Scalar::Json);
        }
        Kind::Struct(fields)
    }

    /// The root entity's fields: structural properties of it and its derived entity types,
    /// plus the navigation properties listed in `navigation`.
    fn root_fields(&self, navigation: &[&str]) -> Vec<Field> {
        let name = self.root.name.clone().unwrap_or_default();
        let mut def = self.root.clone();
        for (k, v) in &self.root.navigation_properties {
            if navigation.contains(&k.as_str()) {
                def.properties.insert(k.clone(), v.clone());
            }
        }
        self.struct_fields(&name, &def, 0)
    }
}

/// Adds `incoming` to `fields`, resolving clashes as described in the module doc.
pub(crate) fn merge_fields(fields: &mut Vec<Field>, incoming: Vec<Field>) {
    for new in incoming {
        match fields.iter_mut().find(|f| f.json == new.json) {
            None => fields.push(new),
            Some(existing) => merge_field(existing, new),
        }
    }
}

fn merge_field(existing: &mut Field, new: Field) {
    let same_scalar =
        matches!((&existing.kind, &new.kind), (Kind::Scalar(a), Kind::Scalar(b)) if a == b);
    if same_scalar {
        return;
    }
    match (&mut existing.kind, new.kind) {
        (Kind::Struct(a), Kind::Struct(b)) => {
            merge_fields(a, b);
            sort_fields(a);
        }
        (Kind::List(a), Kind::List(b)) => merge_field(a, *b),
        _ => {
            existing.kind = Kind::Scalar(Scalar::Json);
            existing.csdl_type = format!("{} | {}", existing.csdl_type, new.csdl_type);
        }
    }
}

fn sort_fields(fields: &mut [Field]) {
    // `@odata.type` sorts first since `@` precedes letters.
    fields.sort_by(|a, b| a.json.cmp(&b.json));
}

/// `from.user.displayName` style JSON names to snake_case column names.
pub(crate) fn snake_case(json: &str) -> String {
    if json == "@odata.type" {
        return "odata_type".to_string();
    }
    let chars: Vec<char> = json.chars().collect();
    let mut out = String::with_capacity(json.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                None => false,
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                Some(_) => false,
            };
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    out
}

/// Top-level structs of chatMessage whose children are columns of their own: the body and
/// the channel a message belongs to are read by nearly every query.
const CHAT_FLATTENED: &[&str] = &["body", "channelIdentity"];

/// The chatMessage type: the structural union of the v1.0 and beta definitions.
pub(crate) fn chat_message_fields() -> Vec<Field> {
    let mut fields = Model::parse(CHAT_MESSAGE_V1).root_fields(CHAT_NAVIGATION_COLUMNS);
    let beta = Model::parse(CHAT_MESSAGE_BETA).root_fields(CHAT_NAVIGATION_COLUMNS);
    merge_fields(&mut fields, beta);
    sort_fields(&mut fields);
    for f in &mut fields {
        f.flatten = CHAT_FLATTENED.contains(&f.json.as_str());
    }
    fields
}

/// The mail `message` type (v1.0). Its navigation properties are not expanded by the CSDL
/// excerpt, so they stay in `raw_json` only.
pub(crate) fn mail_message_fields() -> Vec<Field> {
    let mut fields = Model::parse(MAIL_MESSAGE_V1).root_fields(&[]);
    // The derived entity types (eventMessage, calendarSharingMessage) are not expanded in the
    // CSDL excerpt; `@odata.type` still names them.
    if !fields.iter().any(|f| f.json == "@odata.type") {
        fields.push(Field::scalar("@odata.type", "odata.type", Scalar::Utf8));
    }
    sort_fields(&mut fields);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_follows_graph_names() {
        assert_eq!(snake_case("displayName"), "display_name");
        assert_eq!(
            snake_case("callTranscriptICalUid"),
            "call_transcript_i_cal_uid"
        );
        assert_eq!(snake_case("webURL"), "web_url");
        assert_eq!(snake_case("id"), "id");
        assert_eq!(snake_case("@odata.type"), "odata_type");
    }

    fn find<'a>(fields: &'a [Field], json: &str) -> &'a Field {
        fields
            .iter()
            .find(|f| f.json == json)
            .unwrap_or_else(|| panic!("no field {json}"))
    }

    fn struct_of(f: &Field) -> &[Field] {
        match &f.kind {
            Kind::Struct(s) => s,
            other => panic!("{} is not a struct: {other:?}", f.json),
        }
    }

    #[test]
    fn chat_message_has_beta_additions_and_event_detail_union() {
        let fields = chat_message_fields();
        find(&fields, "onBehalfOf");
        let body = struct_of(find(&fields, "body"));
        find(body, "messageBodyContentType");
        let detail = struct_of(find(&fields, "eventDetail"));
        for name in [
            "@odata.type",
            "callDuration",
            "members",
            "teamsAppDisplayName",
            "sharedChannelId",
            "visibleHistoryStartDateTime",
        ] {
            find(detail, name);
        }
        // identity is polymorphic: teamworkUserIdentity and communicationsUserIdentity fields
        let from = struct_of(find(&fields, "from"));
        let user = struct_of(find(from, "user"));
        find(user, "userIdentityType");
        find(user, "tenantId");
        find(user, "@odata.type");
    }
}
