//! gmshub's Bayeux security policy, installed on every hub: clients
//! publish to the `/service` channels (the services answer them) and to
//! the broadcast channels `[cometd] publishChannels` lists, never to
//! `/_genesys` (GMS apps trust what arrives there as the server's own);
//! they subscribe to anything but the root wildcards `/*` and `/**`
//! unless `[cometd] rootWildcards` allows them. Server-side publishes
//! (notifications, chat events) do not pass through it.
//! May use: `wire` (the `/_genesys` name), `config`.

use bayeux::channel::ChannelName;
use bayeux::message::Incoming;
use bayeux::security::SecurityPolicy;
use bayeux::Session;

use crate::config::ChannelRules;
use crate::wire::envelope::GENESYS;

pub struct ChannelPolicy {
    rules: ChannelRules,
}

impl ChannelPolicy {
    pub fn new(rules: ChannelRules) -> Self {
        Self { rules }
    }
}

/// `/_genesys` and everything under it.
fn server_owned(channel: &str) -> bool {
    channel
        .strip_prefix(GENESYS)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl SecurityPolicy for ChannelPolicy {
    fn can_subscribe(&self, _session: &Session, channel: &ChannelName) -> bool {
        self.rules.root_wildcards || !matches!(channel.as_str(), "/*" | "/**")
    }

    fn can_publish(&self, _session: &Session, channel: &ChannelName, _message: &Incoming) -> bool {
        if channel.is_service() {
            return true;
        }
        !server_owned(channel.as_str())
            && self
                .rules
                .publish
                .iter()
                .any(|p| p.matches(channel.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesys_and_what_is_under_it_are_the_servers() {
        assert!(server_owned("/_genesys"));
        assert!(server_owned("/_genesys/x"));
        assert!(!server_owned("/_genesysx"));
        assert!(!server_owned("/demo/_genesys"));
    }
}
