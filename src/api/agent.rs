//! The agent API, gmshub's own (documented in `docs/agent-api.md`): agents
//! and bots log in, go ready with a capacity, are offered waiting chats
//! oldest first, accept or decline them, and act in them. JSON in and out
//! under `/gmshub/agent`; every call but login carries `Authorization:
//! Bearer <token>`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use channels::chat::{Action, AgentAccount, AgentError, Agents, ChatError, ChatSession, Event};
use serde::Deserialize;
use serde_json::json;

use super::request::client_key;
use super::throttle::LoginThrottle;

#[derive(Clone)]
struct Desk {
    agents: Agents,
    throttle: Arc<LoginThrottle>,
}

impl axum::extract::FromRef<Desk> for Agents {
    fn from_ref(desk: &Desk) -> Agents {
        desk.agents.clone()
    }
}

pub fn router(agents: Agents) -> Router {
    let desk = Desk {
        agents,
        throttle: Arc::default(),
    };
    Router::new()
        .route("/gmshub/agent/login", post(login))
        .route("/gmshub/agent/logout", post(logout))
        .route("/gmshub/agent/me", get(whoami))
        .route("/gmshub/agent/ready", post(ready))
        .route("/gmshub/agent/not-ready", post(not_ready))
        .route("/gmshub/agent/offers", get(offers))
        .route("/gmshub/agent/chats", get(chats))
        .route("/gmshub/agent/chats/next", post(accept_next))
        .route("/gmshub/agent/chats/{chat_id}", get(transcript))
        .route("/gmshub/agent/chats/{chat_id}/{action}", post(act))
        .route("/gmshub/agent/chats/{chat_id}/files/{file_id}", get(file))
        .with_state(desk)
}

/// An error as `{"error": "..."}` with its status.
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<AgentError> for Failure {
    fn from(e: AgentError) -> Self {
        let status = match &e {
            AgentError::BadLogin | AgentError::NotLoggedIn => StatusCode::UNAUTHORIZED,
            AgentError::NotReady => StatusCode::CONFLICT,
            AgentError::Chat(c) => return c.into(),
            AgentError::Store(s) => {
                tracing::warn!("agent API: store: {s}");
                return Failure(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the store is unavailable; try again".into(),
                );
            }
        };
        Failure(status, e.to_string())
    }
}

impl From<&ChatError> for Failure {
    fn from(e: &ChatError) -> Self {
        let status = match e {
            ChatError::UnknownService(_) | ChatError::NotFound(_) => StatusCode::NOT_FOUND,
            ChatError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ChatError::Forbidden(_) => StatusCode::FORBIDDEN,
            ChatError::Ended(_) => StatusCode::GONE,
            ChatError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ChatError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ChatError::Store(s) => {
                tracing::warn!("agent API: store: {s}");
                return Failure(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the store is unavailable; try again".into(),
                );
            }
        };
        Failure(status, e.to_string())
    }
}

impl From<ChatError> for Failure {
    fn from(e: ChatError) -> Self {
        (&e).into()
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

async fn me<'a>(agents: &'a Agents, headers: &HeaderMap) -> Result<&'a AgentAccount, Failure> {
    let token = bearer(headers).ok_or(AgentError::NotLoggedIn)?;
    Ok(agents.authenticate(token).await?)
}

/// A JSON body, or a 400 in this API's shape.
fn body<T: serde::de::DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, Failure> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let bad =
        |e: serde_json::Error| Failure(StatusCode::BAD_REQUEST, format!("bad JSON body: {e}"));
    // An object only: serde would also fill a struct from an array.
    match serde_json::from_slice(bytes).map_err(bad)? {
        object @ serde_json::Value::Object(_) => serde_json::from_value(object).map_err(bad),
        _ => Err(Failure(
            StatusCode::BAD_REQUEST,
            "bad JSON body: an object is expected".into(),
        )),
    }
}

#[derive(Deserialize, Default)]
struct Login {
    agent: String,
    password: String,
}

async fn login(
    State(desk): State<Desk>,
    extensions: Extensions,
    bytes: axum::body::Bytes,
) -> Result<Response, Failure> {
    let l: Login = body(&bytes)?;
    // Only configured accounts are tracked by name, so a flood of made-up
    // logins costs one entry per address, not one per name.
    let account = desk.agents.account(&l.agent).map(|a| a.login.as_str());
    if let Err(wait) = desk.throttle.attempt(account, client_key(&extensions)) {
        let seconds = wait.as_secs().max(1);
        let refused = Failure(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many login attempts; try again in {seconds} s"),
        );
        return Ok(([(header::RETRY_AFTER, seconds.to_string())], refused).into_response());
    }
    let (token, account) = desk.agents.login(&l.agent, &l.password).await?;
    Ok(Json(json!({
        "token": token,
        "agent": account.login,
        "nickname": account.nickname,
        "queues": account.queues,
        "type": account.kind,
    }))
    .into_response())
}

async fn logout(State(agents): State<Agents>, headers: HeaderMap) -> Result<Response, Failure> {
    let account = me(&agents, &headers).await?;
    agents
        .logout(bearer(&headers).unwrap_or_default(), &account.login)
        .await?;
    Ok(Json(json!({})).into_response())
}

/// Who the token's agent is and its presence as the server has it (a desk
/// reloaded shows what is true, not what it assumed), with whom it may
/// invite and where it may transfer.
async fn whoami(State(agents): State<Agents>, headers: HeaderMap) -> Result<Response, Failure> {
    let account = me(&agents, &headers).await?;
    let presence = agents.presence(&account.login).await?;
    let colleagues: Vec<_> = agents
        .accounts()
        .filter(|a| a.login != account.login)
        .map(|a| json!({ "agent": a.login, "nickname": a.nickname, "type": a.kind }))
        .collect();
    let mut queues: Vec<&str> = agents
        .accounts()
        .flat_map(|a| a.queues.iter().map(String::as_str))
        .collect();
    queues.sort_unstable();
    queues.dedup();
    Ok(Json(json!({
        "agent": account.login,
        "nickname": account.nickname,
        "queues": account.queues,
        "type": account.kind,
        "ready": presence.ready,
        "capacity": presence.capacity,
        "colleagues": colleagues,
        "transferQueues": queues,
    }))
    .into_response())
}

#[derive(Deserialize, Default)]
struct Ready {
    capacity: Option<u32>,
}

async fn ready(
    State(agents): State<Agents>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Response, Failure> {
    let account = me(&agents, &headers).await?;
    let r: Ready = body(&bytes)?;
    let capacity = r.capacity.unwrap_or(1);
    agents.set_presence(&account.login, true, capacity).await?;
    Ok(Json(
        json!({ "ready": true, "capacity": capacity.min(channels::chat::agents::MAX_CAPACITY) }),
    )
    .into_response())
}

async fn not_ready(State(agents): State<Agents>, headers: HeaderMap) -> Result<Response, Failure> {
    let account = me(&agents, &headers).await?;
    agents.set_presence(&account.login, false, 0).await?;
    Ok(Json(json!({ "ready": false, "capacity": 0 })).into_response())
}

async fn offers(State(agents): State<Agents>, headers: HeaderMap) -> Result<Response, Failure> {
    let account = me(&agents, &headers).await?;
    Ok(Json(json!({ "offers": agents.offers(account).await? })).into_response())
}

/// A chat as the agent side sees it, with the events given.
fn view(chat_id: &str, chat: &ChatSession, events: &[Event]) -> serde_json::Value {
    json!({
        "chatId": chat_id,
        "service": chat.service,
        "queue": chat.queue,
        "state": chat.state,
        "subject": chat.subject,
        "userData": chat.user_data,
        "participants": chat.participants,
        "nextPosition": chat.next_position(),
        "messages": events,
    })
}

async fn chats(State(agents): State<Agents>, headers: HeaderMap) -> Result<Response, Failure> {
    let account = me(&agents, &headers).await?;
    let list: Vec<serde_json::Value> = agents
        .active_chats(&account.login)
        .await?
        .iter()
        .map(|(id, chat)| view(id, chat, &[]))
        .collect();
    Ok(Json(json!({ "chats": list })).into_response())
}

async fn accept_next(
    State(agents): State<Agents>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let account = me(&agents, &headers).await?;
    match agents.accept_next(account).await? {
        Some((id, chat)) => {
            let events = agents.chats().transcript(&id, &chat, 1).await?;
            Ok(Json(view(&id, &chat, &events)).into_response())
        }
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

#[derive(Deserialize)]
struct Since {
    from: Option<u32>,
}

async fn transcript(
    State(agents): State<Agents>,
    headers: HeaderMap,
    Path(chat_id): Path<String>,
    Query(q): Query<Since>,
) -> Result<Response, Failure> {
    let account = me(&agents, &headers).await?;
    let chat = agents
        .chats()
        .read_as_agent(&chat_id, &account.login)
        .await?;
    let events = agents
        .chats()
        .transcript(&chat_id, &chat, q.from.unwrap_or(1))
        .await?;
    Ok(Json(view(&chat_id, &chat, &events)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ActBody {
    message: Option<String>,
    message_type: Option<String>,
    url: Option<String>,
    queue: Option<String>,
    agent: Option<String>,
    nickname: Option<String>,
}

async fn act(
    State(agents): State<Agents>,
    headers: HeaderMap,
    Path((chat_id, action)): Path<(String, String)>,
    bytes: axum::body::Bytes,
) -> Result<Response, Failure> {
    let account = me(&agents, &headers).await?;
    let b: ActBody = body(&bytes)?;
    let chat = match action.as_str() {
        "accept" => agents.accept(account, &chat_id).await?,
        "reject" => {
            agents.chats().decline(&chat_id, &account.login).await?;
            return Ok(Json(json!({ "chatId": chat_id, "declined": true })).into_response());
        }
        "invite" => {
            let other = b.agent.unwrap_or_default();
            agents.invite(account, &chat_id, &other).await?
        }
        other => {
            let action = match other {
                "send" => Action::Send {
                    text: b.message.unwrap_or_default(),
                    message_type: b.message_type,
                },
                "start-typing" => Action::StartTyping(b.message),
                "stop-typing" => Action::StopTyping(b.message),
                "url" => Action::PushUrl(b.url.unwrap_or_default()),
                "notice" => Action::CustomNotice(b.message.unwrap_or_default()),
                "nickname" => Action::UpdateNickname(b.nickname.unwrap_or_default()),
                "leave" => Action::Leave,
                "end" => Action::End,
                "transfer" => Action::Transfer(b.queue.unwrap_or_default()),
                _ => {
                    return Err(Failure(
                        StatusCode::NOT_FOUND,
                        format!("unknown action {other:?}"),
                    ))
                }
            };
            agents
                .chats()
                .agent(&chat_id, &account.login, action)
                .await?
        }
    };
    Ok(Json(view(&chat_id, &chat, &[])).into_response())
}

async fn file(
    State(agents): State<Agents>,
    headers: HeaderMap,
    Path((chat_id, file_id)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let account = me(&agents, &headers).await?;
    let file = agents
        .chats()
        .download_as_agent(&account.login, &chat_id, &file_id)
        .await?;
    Ok(super::chat_v2::file_response(file))
}
