//! The `/_genesys` extension: when a session whose request named a
//! `gms_user` subscribes to `/_genesys`, that user's classic-API deliveries
//! (Chat API v1 events, `comet` notifications) go to it. May use: the users
//! registry, `wire` (the channel's name).

use std::sync::Arc;

use bayeux::ext::Extension;
use bayeux::message::{Incoming, OneOrMany};
use bayeux::Session;

use super::users::GenesysUsers;
use crate::wire::envelope::GENESYS;

pub struct GenesysChannel {
    users: Arc<GenesysUsers>,
}

impl GenesysChannel {
    pub fn new(users: Arc<GenesysUsers>) -> Self {
        Self { users }
    }
}

fn names_genesys(message: &Incoming) -> bool {
    match &message.subscription {
        Some(OneOrMany::One(c)) => c == GENESYS,
        Some(OneOrMany::Many(list)) => list.iter().any(|c| c == GENESYS),
        None => false,
    }
}

impl Extension for GenesysChannel {
    fn incoming(&self, session: Option<&Session>, message: &mut Incoming) -> bool {
        if let (Some(session), Some("/meta/subscribe")) = (session, message.channel.as_deref()) {
            if names_genesys(message) {
                if let Some(user) = session.identity() {
                    self.users.subscribed(user, session.id());
                }
            }
        }
        true
    }
}
