//! The app goes to the background: `/meta/disconnect` with
//! `ext.transcriptPosition` (GMS's chat apps send it) marks the chats of the
//! session, and of its `gms_user`, as in the background: they stop pushing
//! to it and tell the agents. May use: `channels` (the chat engine).

use bayeux::ext::Extension;
use bayeux::message::Incoming;
use bayeux::Session;
use channels::chat::Chats;

pub struct Background {
    chats: Chats,
}

impl Background {
    pub fn new(chats: Chats) -> Self {
        Self { chats }
    }
}

impl Extension for Background {
    fn incoming(&self, session: Option<&Session>, message: &mut Incoming) -> bool {
        let Some(session) = session else { return true };
        let background = message.channel.as_deref() == Some("/meta/disconnect")
            && message
                .ext_object()
                .is_some_and(|ext| ext.contains_key("transcriptPosition"));
        if background {
            let chats = self.chats.clone();
            let client_id = session.id().to_owned();
            let user = session.identity().map(str::to_owned);
            tokio::spawn(async move {
                if let Err(e) = chats.to_background(&client_id, user.as_deref()).await {
                    tracing::warn!("chat to background: {e}");
                }
            });
        }
        true
    }
}
