//! What CometD clients may do with channels (`[cometd]` options; the
//! policy itself is `comet::policy`): the broadcast channels they may
//! publish on (`publishChannels`, patterns in CometD's `*`/`**` syntax),
//! and whether they may subscribe to the root wildcards `/*` and `/**`
//! (`rootWildcards`, which would deliver every channel's traffic).
//! May use: `options`.

use bayeux::channel::ChannelName;

use super::Options;

/// The playground's channels, open to clients while the pages are served.
pub const PLAYGROUND: &str = "/demo/**";

#[derive(Debug, Clone, Default)]
pub struct ChannelRules {
    /// Broadcast channels (and patterns) clients may publish on.
    pub publish: Vec<ChannelName>,
    /// Clients may subscribe to `/*` and `/**`.
    pub root_wildcards: bool,
}

impl ChannelRules {
    /// From `[cometd]`; `pages`: whether `[lab] enable-sample` is on (then
    /// the default `publishChannels` is the playground's).
    pub fn from_options(o: &Options, pages: bool) -> Self {
        let default = if pages { PLAYGROUND } else { "" };
        let publish = o
            .get("cometd", "publishChannels")
            .unwrap_or(default)
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .filter_map(|p| match ChannelName::parse(p) {
                Ok(name) if !name.is_meta() => Some(name),
                _ => {
                    tracing::warn!(pattern = p, "[cometd] publishChannels: not a channel name");
                    None
                }
            })
            .collect();
        Self {
            publish,
            root_wildcards: o.flag("cometd", "rootWildcards", false),
        }
    }

    /// One line for the start-up log.
    pub fn summary(&self) -> String {
        if self.publish.is_empty() {
            return "CometD: clients publish only to services ([cometd] publishChannels)".into();
        }
        let shown: Vec<&str> = self.publish.iter().map(ChannelName::as_str).collect();
        format!("CometD: clients may also publish on {}", shown.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(ini: &str, pages: bool) -> ChannelRules {
        ChannelRules::from_options(&Options::from_ini(ini, &[]).unwrap(), pages)
    }

    #[test]
    fn the_playground_is_open_only_with_the_pages() {
        assert_eq!(rules("", true).publish[0].as_str(), PLAYGROUND);
        assert!(rules("", false).publish.is_empty());
        let set = rules(
            "[cometd]\npublishChannels = /rooms/*, /x/**, bad name, /meta/x\n",
            true,
        );
        let names: Vec<&str> = set.publish.iter().map(ChannelName::as_str).collect();
        assert_eq!(names, ["/rooms/*", "/x/**"]);
        assert!(rules("[cometd]\npublishChannels =\n", true)
            .publish
            .is_empty());
        assert!(!rules("", true).root_wildcards);
        assert!(rules("[cometd]\nrootWildcards = true\n", true).root_wildcards);
    }
}
