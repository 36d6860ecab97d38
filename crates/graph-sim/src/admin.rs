//! The admin API under `/_sim/`: the same changes and ground truth as [`crate::Sim`], as
//! JSON over HTTP, for a simulator running in another process.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::config::{Billing, LinkStyle, RateLimits};
use crate::content::{ContentFilter, NewAttachment, NewContent};
use crate::faults::FaultPlan;
use crate::server::{Shared, Sim};
use crate::store::SimError;
use crate::truth::MessageRef;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/credentials", get(credentials))
        .route("/directory", get(directory))
        .route("/snapshot", get(snapshot))
        .route("/history", get(history))
        .route("/stats", get(stats).delete(reset_stats))
        .route("/issued-secrets", get(issued_secrets))
        .route("/chat-messages", post(add_chat_message))
        .route("/channel-messages", post(add_channel_message))
        .route("/messages/edit", post(edit_message))
        .route("/messages/soft-delete", post(soft_delete_message))
        .route("/mail", post(add_mail))
        .route("/content", get(content))
        .route("/content/delete", post(delete_content))
        .route("/content/forbid", post(forbid_content))
        .route("/mail/update", post(update_mail))
        .route("/mail/delete", post(delete_mail))
        .route("/mail/move", post(move_mail))
        .route("/mail-folders", post(add_mail_folder))
        .route("/mail-folders/delete", post(delete_mail_folder))
        .route("/users", post(add_user))
        .route("/users/delete", post(delete_user))
        .route("/teams/delete", post(delete_team))
        .route("/chats", post(add_chat))
        .route("/clock", get(now))
        .route("/clock/advance", post(advance_clock))
        .route("/state-tokens/expire", post(expire_state_tokens))
        .route("/access-tokens/expire", post(expire_access_tokens))
        .route("/faults", put(set_faults))
        .route("/settings", put(set_settings))
}

fn sim(shared: Arc<Shared>) -> Sim {
    Sim { shared }
}

fn reply<T: Serialize>(result: Result<T, SimError>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    graph_url: String,
    login_url: String,
    tenant_id: String,
    client_id: String,
    client_secret: String,
    certificate_pem: String,
    private_key_pem: String,
}

async fn credentials(State(s): State<Arc<Shared>>) -> Response {
    let sim = sim(s);
    let certificate = sim.client_certificate();
    Json(Credentials {
        graph_url: sim.graph_url().to_string(),
        login_url: sim.login_url().to_string(),
        tenant_id: sim.tenant_id().to_string(),
        client_id: sim.client_id().to_string(),
        client_secret: sim.client_secret().to_string(),
        certificate_pem: certificate.certificate_pem,
        private_key_pem: certificate.private_key_pem,
    })
    .into_response()
}

async fn directory(State(s): State<Arc<Shared>>) -> Response {
    Json(sim(s).directory()).into_response()
}

async fn snapshot(State(s): State<Arc<Shared>>) -> Response {
    Json(sim(s).snapshot()).into_response()
}

async fn history(State(s): State<Arc<Shared>>) -> Response {
    Json(sim(s).history()).into_response()
}

async fn stats(State(s): State<Arc<Shared>>) -> Response {
    Json(sim(s).stats()).into_response()
}

async fn reset_stats(State(s): State<Arc<Shared>>) -> Response {
    sim(s).reset_stats();
    StatusCode::NO_CONTENT.into_response()
}

async fn issued_secrets(State(s): State<Arc<Shared>>) -> Response {
    Json(sim(s).issued_secrets()).into_response()
}

/// Answer with what `work` returns, run where it may take long (digests of large content).
async fn reply_blocking<T: Serialize + Send + 'static>(
    work: impl FnOnce() -> Result<T, SimError> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => reply(result),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

/// `images: [{size}]` and `files: [{name, size} or {driveItemId}]` ride along.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewChatMessage {
    chat_id: String,
    from: String,
    html: String,
    #[serde(flatten)]
    content: NewContent,
}

async fn add_chat_message(State(s): State<Arc<Shared>>, Json(m): Json<NewChatMessage>) -> Response {
    let sim = sim(s);
    reply_blocking(move || sim.add_chat_message_with(&m.chat_id, &m.from, &m.html, &m.content))
        .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewChannelMessage {
    team_id: String,
    channel_id: String,
    from: String,
    html: String,
    #[serde(default)]
    reply_to: Option<String>,
    #[serde(flatten)]
    content: NewContent,
}

async fn add_channel_message(
    State(s): State<Arc<Shared>>,
    Json(m): Json<NewChannelMessage>,
) -> Response {
    let sim = sim(s);
    reply_blocking(move || {
        sim.add_channel_message_with(
            &m.team_id,
            &m.channel_id,
            m.reply_to.as_deref(),
            &m.from,
            &m.html,
            &m.content,
        )
    })
    .await
}

#[derive(Deserialize)]
struct Edit {
    message: MessageRef,
    html: String,
}

async fn edit_message(State(s): State<Arc<Shared>>, Json(e): Json<Edit>) -> Response {
    reply(sim(s).edit_message(&e.message, &e.html))
}

#[derive(Deserialize)]
struct Delete {
    message: MessageRef,
}

async fn soft_delete_message(State(s): State<Arc<Shared>>, Json(d): Json<Delete>) -> Response {
    reply(sim(s).soft_delete_message(&d.message))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewMail {
    user_id: String,
    folder_id: String,
    subject: String,
    html: String,
    #[serde(default)]
    attachments: Vec<NewAttachment>,
}

async fn add_mail(State(s): State<Arc<Shared>>, Json(m): Json<NewMail>) -> Response {
    let sim = sim(s);
    reply_blocking(move || {
        sim.add_mail_with(
            &m.user_id,
            &m.folder_id,
            &m.subject,
            &m.html,
            &m.attachments,
        )
    })
    .await
}

/// `GET /_sim/content?kind=driveItem&id=...&messageId=...`: the pieces that match.
async fn content(State(s): State<Arc<Shared>>, Query(filter): Query<ContentFilter>) -> Response {
    let sim = sim(s);
    reply_blocking(move || Ok(sim.content_where(&filter))).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContentRef {
    id: String,
    /// For `forbid`: false serves it again.
    #[serde(default = "yes")]
    forbidden: bool,
}

fn yes() -> bool {
    true
}

async fn delete_content(State(s): State<Arc<Shared>>, Json(c): Json<ContentRef>) -> Response {
    let sim = sim(s);
    reply_blocking(move || sim.delete_content(&c.id)).await
}

async fn forbid_content(State(s): State<Arc<Shared>>, Json(c): Json<ContentRef>) -> Response {
    let sim = sim(s);
    reply_blocking(move || sim.forbid_content(&c.id, c.forbidden)).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MailItemRef {
    user_id: String,
    folder_id: String,
    id: String,
}

async fn update_mail(State(s): State<Arc<Shared>>, Json(m): Json<MailItemRef>) -> Response {
    reply(sim(s).update_mail(&m.user_id, &m.folder_id, &m.id))
}

async fn delete_mail(State(s): State<Arc<Shared>>, Json(m): Json<MailItemRef>) -> Response {
    reply(sim(s).delete_mail(&m.user_id, &m.folder_id, &m.id))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MailMove {
    user_id: String,
    folder_id: String,
    id: String,
    to_folder_id: String,
}

async fn move_mail(State(s): State<Arc<Shared>>, Json(m): Json<MailMove>) -> Response {
    reply(sim(s).move_mail(&m.user_id, &m.folder_id, &m.id, &m.to_folder_id))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewMailFolder {
    user_id: String,
    #[serde(default)]
    parent_id: Option<String>,
    display_name: String,
    #[serde(default)]
    hidden: bool,
}

async fn add_mail_folder(State(s): State<Arc<Shared>>, Json(f): Json<NewMailFolder>) -> Response {
    reply(sim(s).add_mail_folder(
        &f.user_id,
        f.parent_id.as_deref(),
        &f.display_name,
        f.hidden,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MailFolderRef {
    user_id: String,
    folder_id: String,
}

async fn delete_mail_folder(
    State(s): State<Arc<Shared>>,
    Json(f): Json<MailFolderRef>,
) -> Response {
    reply(sim(s).delete_mail_folder(&f.user_id, &f.folder_id))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Id {
    id: String,
}

async fn delete_user(State(s): State<Arc<Shared>>, Json(u): Json<Id>) -> Response {
    reply(sim(s).delete_user(&u.id))
}

async fn delete_team(State(s): State<Arc<Shared>>, Json(t): Json<Id>) -> Response {
    reply(sim(s).delete_team(&t.id))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewUser {
    display_name: String,
}

async fn add_user(State(s): State<Arc<Shared>>, Json(u): Json<NewUser>) -> Response {
    Json(sim(s).add_user(&u.display_name)).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewChat {
    member_ids: Vec<String>,
    #[serde(default)]
    topic: Option<String>,
}

async fn add_chat(State(s): State<Arc<Shared>>, Json(c): Json<NewChat>) -> Response {
    reply(sim(s).add_chat(&c.member_ids, c.topic.as_deref()))
}

async fn now(State(s): State<Arc<Shared>>) -> Response {
    Json(serde_json::json!({ "now": sim(s).now() })).into_response()
}

#[derive(Deserialize)]
struct Advance {
    seconds: u64,
}

async fn advance_clock(State(s): State<Arc<Shared>>, Json(a): Json<Advance>) -> Response {
    let sim = sim(s);
    sim.advance_clock(Duration::from_secs(a.seconds));
    Json(serde_json::json!({ "now": sim.now() })).into_response()
}

async fn expire_state_tokens(State(s): State<Arc<Shared>>) -> Response {
    sim(s).expire_state_tokens();
    StatusCode::NO_CONTENT.into_response()
}

async fn expire_access_tokens(State(s): State<Arc<Shared>>) -> Response {
    sim(s).expire_access_tokens();
    StatusCode::NO_CONTENT.into_response()
}

async fn set_faults(State(s): State<Arc<Shared>>, Json(plan): Json<FaultPlan>) -> Response {
    sim(s).set_faults(plan);
    StatusCode::NO_CONTENT.into_response()
}

/// Any subset of the run-time settings; absent fields stay as they are.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettingsUpdate {
    #[serde(default)]
    latency_ms: Option<u64>,
    /// `null` removes the limits; absent leaves them.
    #[serde(default, with = "double_option")]
    rate_limits: Option<Option<RateLimits>>,
    #[serde(default)]
    billing: Option<Billing>,
    #[serde(default)]
    link_style: Option<LinkStyle>,
    #[serde(default, with = "double_option")]
    page_size_cap: Option<Option<u32>>,
    #[serde(default)]
    replay_per_mille: Option<u32>,
    #[serde(default)]
    access_token_lifetime_secs: Option<u64>,
    #[serde(default)]
    evolvable_enums: Option<bool>,
    /// `null` lifts delta's history limit; absent leaves it.
    #[serde(default, with = "double_option")]
    delta_history_months: Option<Option<u32>>,
    #[serde(default)]
    refuse_repeated_delta_parameters: Option<bool>,
    #[serde(default)]
    key_syntax_links: Option<bool>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

async fn set_settings(State(s): State<Arc<Shared>>, Json(u): Json<SettingsUpdate>) -> Response {
    let sim = sim(s);
    if let Some(ms) = u.latency_ms {
        sim.set_latency(Duration::from_millis(ms));
    }
    if let Some(limits) = u.rate_limits {
        sim.set_rate_limits(limits);
    }
    if let Some(billing) = u.billing {
        sim.set_billing(billing);
    }
    if let Some(style) = u.link_style {
        sim.set_link_style(style);
    }
    if let Some(cap) = u.page_size_cap {
        sim.set_page_size_cap(cap);
    }
    if let Some(per_mille) = u.replay_per_mille {
        sim.set_replay_per_mille(per_mille);
    }
    if let Some(secs) = u.access_token_lifetime_secs {
        sim.set_access_token_lifetime(Duration::from_secs(secs));
    }
    if let Some(on) = u.evolvable_enums {
        sim.set_evolvable_enums(on);
    }
    if let Some(months) = u.delta_history_months {
        sim.set_delta_history_months(months);
    }
    if let Some(on) = u.refuse_repeated_delta_parameters {
        sim.set_refuse_repeated_delta_parameters(on);
    }
    if let Some(on) = u.key_syntax_links {
        sim.set_key_syntax_links(on);
    }
    StatusCode::NO_CONTENT.into_response()
}
