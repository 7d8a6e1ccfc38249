//! The agent side's CometD channel, `/service/agent`: an agent attaches its
//! session with the token of the agent API (`{"operation": "attach",
//! "token": "..."}`), then hears of its chats and offers there (from the
//! [`notifier`](super::notifier)) and reads what changed through the agent
//! API. May use: `channels` (the agents).

use std::sync::Arc;

use bayeux::{Bayeux, ServiceHandler, ServiceRequest, Session};
use channels::chat::Agents;
use serde_json::{json, Value};

/// Where agents' CometD sessions attach and get their pings.
pub const CHANNEL: &str = "/service/agent";

/// The agent side's CometD channel: an agent attaches its session with the
/// token of the agent API, then gets a ping on every change of its chats
/// (`{"event": "chat", "chatId", "nextPosition", "state"}`) and when chats
/// enter or leave one of its queues, at most every 250 ms (`{"event":
/// "offers", "queue", "chatId", "chatIds", "more"}`: the chats of the
/// window, `chatId` the first), and reads what changed through the agent
/// API.
pub struct AgentComet {
    agents: Agents,
}

impl AgentComet {
    pub fn new(agents: Agents) -> Self {
        Self { agents }
    }
}

impl ServiceHandler for AgentComet {
    fn handle(&self, server: &Arc<Bayeux>, session: &Arc<Session>, request: &ServiceRequest<'_>) {
        let data: Value = serde_json::from_str(request.data.get()).unwrap_or(Value::Null);
        let (agents, server, session) = (self.agents.clone(), server.clone(), session.clone());
        tokio::spawn(async move {
            let answer = match (data["operation"].as_str(), data["token"].as_str()) {
                (Some("attach"), Some(token)) => match agents.authenticate(token).await {
                    Ok(account) => {
                        let login = account.login.clone();
                        match agents.set_comet(&login, session.id()).await {
                            Ok(()) => {
                                json!({"operation": "attach", "successful": true, "agent": login})
                            }
                            Err(e) => {
                                json!({"operation": "attach", "successful": false, "error": e.to_string()})
                            }
                        }
                    }
                    Err(e) => {
                        json!({"operation": "attach", "successful": false, "error": e.to_string()})
                    }
                },
                _ => {
                    json!({"successful": false, "error": "expected {\"operation\": \"attach\", \"token\": ...}"})
                }
            };
            if let Ok(raw) = serde_json::value::to_raw_value(&answer) {
                let _ = server.deliver(&session, CHANNEL, &raw);
            }
        });
    }
}
