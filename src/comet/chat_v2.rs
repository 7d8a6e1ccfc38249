//! Chat API v2 over CometD: customers publish `{"operation": ...}` requests
//! on `/service/chatV2/{serviceName}` and get every answer, and every chat
//! event, as a delivery on that channel, to their session only (the events
//! come from the [`notifier`](super::notifier)). May use: the notifier's
//! memory of what was sent, `wire`.

use std::sync::Arc;

use bayeux::{Bayeux, ServiceHandler, ServiceRequest, Session};
use channels::chat::{ChatError, ChatSession, Chats, CometLink};
use serde_json::Value;

use super::notifier::Pushed;
use crate::wire::chat_v2::{action, code, ChatV2Response, Params};

pub const PATTERN: &str = "/service/chatV2/*";
const PREFIX: &str = "/service/chatV2/";

pub struct ChatV2Comet {
    chats: Chats,
    pushed: Arc<Pushed>,
}

impl ChatV2Comet {
    pub fn new(chats: Chats, pushed: Arc<Pushed>) -> Self {
        Self { chats, pushed }
    }
}

/// Sends an answer in parts of at most a quarter of `maxQueue` each, every
/// part queued only when the session's queue has room for it: a long
/// transcript reaches the client however small its queue, and never costs it
/// its session. A client that takes nothing for `maxInterval` stops getting
/// parts (it resyncs with `requestNotifications` from its position).
async fn send(server: &Bayeux, session: &Arc<Session>, channel: &str, response: ChatV2Response) {
    let config = server.config();
    let (wait, part) = (config.max_interval + config.timeout, config.max_queue / 4);
    let encode = |r: &ChatV2Response| serde_json::value::to_raw_value(r);
    // Most answers fit in one part: encoded once, sent as they are.
    let parts = match encode(&response) {
        Ok(raw) if raw.get().len() <= part => vec![raw],
        _ => match response.in_parts(part).iter().map(encode).collect() {
            Ok(parts) => parts,
            Err(e) => return tracing::warn!("chat over CometD: cannot encode an answer: {e}"),
        },
    };
    for raw in parts {
        match server.deliver_with_room(session, channel, &raw, wait).await {
            Ok(true) => {}
            Ok(false) => {
                return tracing::info!(
                    session = session.key(),
                    "chat over CometD: a part of a long answer could not be queued (the client \
                     takes nothing, or maxQueue is smaller than one event)"
                )
            }
            Err(e) => return tracing::warn!("chat over CometD: {e}"),
        }
    }
}

impl ServiceHandler for ChatV2Comet {
    fn handle(&self, server: &Arc<Bayeux>, session: &Arc<Session>, request: &ServiceRequest<'_>) {
        let channel = request.channel.as_str().to_owned();
        let service = channel.strip_prefix(PREFIX).unwrap_or_default().to_owned();
        let data: Value = serde_json::from_str(request.data.get()).unwrap_or(Value::Null);
        let (chats, server, session) = (self.chats.clone(), server.clone(), session.clone());
        let pushed = self.pushed.clone();
        tokio::spawn(async move {
            let response = answer(
                &chats,
                &service,
                &channel,
                session.id(),
                session.client_key(),
                &data,
            )
            .await;
            // What an answer carries is not pushed again.
            if let (Some(id), Some(last)) = (&response.chat_id, response.messages.last()) {
                if response.status_code == 0 && !response.chat_ended {
                    pushed.sent_up_to(id, last.index);
                }
            }
            send(&server, &session, &channel, response).await;
        });
    }
}

async fn answer(
    chats: &Chats,
    service: &str,
    channel: &str,
    client_id: &str,
    from: Option<std::net::IpAddr>,
    data: &Value,
) -> ChatV2Response {
    let p = Params::from_json(data);
    let fail = |chat_id: Option<&str>, e: ChatError| ChatV2Response::error(chat_id, &e).1;
    let Some(operation) = p.get("operation") else {
        return ChatV2Response::bad(None, code::BAD_REQUEST, "operation is required".into());
    };
    let link = CometLink {
        client_id: client_id.to_owned(),
        channel: channel.to_owned(),
    };
    if operation == "requestChat" {
        return match chats
            .request(service, p.chat_request(Some(link), from))
            .await
        {
            Ok((id, chat)) => read(chats, &id, &chat, Some(1)).await,
            Err(e) => fail(None, e),
        };
    }
    if chats.services().get(service).is_none() {
        return fail(None, ChatError::UnknownService(service.to_owned()));
    }
    let creds = p.credentials(false);
    let Some(key) = creds.secure_key.clone().filter(|k| !k.is_empty()) else {
        return ChatV2Response::bad(None, code::BAD_REQUEST, "secureKey is required".into());
    };
    let (chat_id, _) = match chats.by_key(&key).await {
        Ok(Some(found)) => found,
        Ok(None) => return fail(None, ChatError::NotFound("for this secureKey".into())),
        Err(e) => return fail(None, e),
    };
    let position = match p.position() {
        Ok(position) => position,
        Err(advice) => return ChatV2Response::bad(Some(&chat_id), code::BAD_REQUEST, advice),
    };
    if operation == "requestNotifications" {
        // Resume on this connection: the events from the position given (all
        // of them without one), then everything new as it happens.
        return match chats.link(service, &chat_id, &creds, link).await {
            Ok(chat) => read(chats, &chat_id, &chat, Some(position.unwrap_or(1))).await,
            Err(e) => fail(Some(&chat_id), e),
        };
    }
    let act = match action(&operation, &p) {
        Ok(a) => a,
        Err((code, advice)) => return ChatV2Response::bad(Some(&chat_id), code, advice),
    };
    // The events themselves arrive through the notifier; the answer
    // acknowledges the request (with the events asked for by position).
    match chats.client(service, &chat_id, &creds, act).await {
        Ok(chat) => read(chats, &chat_id, &chat, position).await,
        Err(e) => fail(Some(&chat_id), e),
    }
}

/// The answer with the chat's events from `position` on.
async fn read(
    chats: &Chats,
    chat_id: &str,
    chat: &ChatSession,
    position: Option<u32>,
) -> ChatV2Response {
    ChatV2Response::read(chats, chat_id, chat, position)
        .await
        .unwrap_or_else(|(_, failure)| failure)
}
