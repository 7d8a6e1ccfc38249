//! Who may call which REST API, resolved once from the configuration.
//!
//! GMS's Basic authentication per API group, with GMS's names: `[server]
//! realm`, `username`, `password` for every group; overrides in
//! `[service.<name>]` (one service; a callback service falls back to
//! `[callback]`), `[callback]`, `[storage]`, `[notification]`; Chat API v2
//! only when `disable_authentication` (in `[chat.<service>]`, then `[chat]`,
//! default `true`) is `false`, with overrides in those sections. For each
//! group the user is the first `username` of its sections and the password
//! the first `password`; authentication is on exactly when a password is
//! found, and a password without any user name refuses everything (a
//! configuration error, logged at start). A password may be GMS's plain
//! value or an argon2id hash.
//!
//! gmshub's back office (the Node admin API, callback admin, the router API,
//! `/metrics` and publishing notifications) is never open to the world: with no
//! credentials for it (`[admin]`, then `[server]`; `[notification]` for
//! publishing) it answers only to `[server] admin-networks` (default
//! loopback).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use channels::password::Password;
use ipnet::IpNet;

use super::options::Options;

/// The realm GMS names in its challenge by default.
/// Where the Prometheus metrics are served: a back-office path.
pub const METRICS: &str = "/metrics";

pub const DEFAULT_REALM: &str = "Genesys Application Configuration Needed";

/// One group's user name and password.
pub struct Credentials {
    pub user: String,
    pub password: Arc<Password>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// What follows `prefix` in `path`, when `path` is `prefix` or below it.
fn under<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    path.strip_prefix(prefix)
        .filter(|r| r.is_empty() || r.starts_with('/'))
}

/// What a request to one group must show.
#[derive(Debug, Clone)]
pub enum Guard {
    /// Nothing.
    Open,
    /// Basic authentication with these credentials.
    Basic(Arc<Credentials>),
    /// A password is configured but no user name: every request is refused.
    Refuse,
    /// A back-office group without credentials: only `admin-networks`.
    Networks,
}

#[derive(Debug)]
pub struct Access {
    pub realm: String,
    server: Guard,
    storage: Guard,
    notification: Guard,
    publish: Guard,
    callback: Guard,
    admin: Guard,
    /// `service.<name>` sections, by name.
    services: HashMap<String, Guard>,
    chat: Guard,
    /// `chat.<service>` sections, by service.
    chats: HashMap<String, Guard>,
    admin_networks: Vec<IpNet>,
    /// `[server] trusted-proxies`: when set, only requests through these
    /// may name their user (`gms_user`) and their client (`X-Forwarded-For`).
    trusted_proxies: Vec<IpNet>,
}

/// The first of `sections` that has `option`, non-empty.
fn first<'a>(o: &'a Options, sections: &[&str], option: &str) -> Option<&'a str> {
    sections
        .iter()
        .find_map(|s| o.get(s, option).filter(|v| !v.is_empty()))
}

/// The credentials the chain of `sections` (most specific first) gives;
/// `None` when it has no password.
fn resolve(o: &Options, sections: &[&str]) -> Option<Guard> {
    let password = first(o, sections, "password")?;
    let Some(user) = first(o, sections, "username") else {
        tracing::error!(
            "[{}] has a password but no username: its requests are refused",
            sections[0]
        );
        return Some(Guard::Refuse);
    };
    match Password::from_config(password) {
        Ok(password) => Some(Guard::Basic(Arc::new(Credentials {
            user: user.to_owned(),
            password: Arc::new(password),
        }))),
        Err(e) => {
            tracing::error!("[{}] password: {e}; its requests are refused", sections[0]);
            Some(Guard::Refuse)
        }
    }
}

/// The first segment of a path's rest (`/name/...` → `name`).
fn first_segment(rest: &str) -> &str {
    rest.trim_start_matches('/').split('/').next().unwrap_or("")
}

/// The default back-office networks: loopback.
fn loopback() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .map(|n| n.parse().expect("a network"))
        .collect()
}

/// A list of networks (CIDRs or addresses) in `[server] option`.
/// A list of networks (`10.0.0.0/8`) or addresses, separated by commas;
/// `None` when the option is absent or empty.
pub(super) fn networks(o: &Options, section: &str, option: &str) -> Option<Vec<IpNet>> {
    let list = o.get(section, option).filter(|l| !l.is_empty())?;
    list.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .filter_map(|n| {
            n.parse::<IpNet>()
                .or_else(|_| n.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| tracing::warn!(network = n, "[{section}] {option}: not a network"))
                .ok()
        })
        .collect::<Vec<_>>()
        .into()
}

/// Whether `address` (an IPv4-mapped IPv6 one as IPv4) is in `networks`.
pub(crate) fn within(networks: &[IpNet], address: IpAddr) -> bool {
    let address = match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    };
    networks.iter().any(|n| n.contains(&address))
}

impl Access {
    pub fn from_options(o: &Options) -> Self {
        let open = |sections: &[&str]| resolve(o, sections).unwrap_or(Guard::Open);
        let guarded = |sections: &[&str]| resolve(o, sections).unwrap_or(Guard::Networks);
        let named = |prefix: &str| {
            o.section_names()
                .filter_map(|s| s.strip_prefix(prefix).filter(|n| !n.is_empty()))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let services = named("service.")
            .into_iter()
            .map(|name| {
                let section = format!("service.{name}");
                let callback = o.get(&section, "_service") == Some("callback");
                let chain: Vec<&str> = if callback {
                    vec![&section, "callback", "server"]
                } else {
                    vec![&section, "server"]
                };
                let guard = open(&chain);
                (name, guard)
            })
            .collect();
        let chat_guard = |sections: &[&str]| {
            let disabled = sections
                .iter()
                .find_map(|s| o.get(s, "disable_authentication").filter(|v| !v.is_empty()))
                .is_none_or(|v| !v.eq_ignore_ascii_case("false"));
            if disabled {
                Guard::Open
            } else {
                open(sections)
            }
        };
        let chats = named("chat.")
            .into_iter()
            .map(|name| {
                let section = format!("chat.{name}");
                let guard = chat_guard(&[&section, "chat", "server"]);
                (name, guard)
            })
            .collect();
        Self {
            realm: o
                .get("server", "realm")
                .filter(|r| !r.is_empty())
                .unwrap_or(DEFAULT_REALM)
                .to_owned(),
            server: open(&["server"]),
            storage: open(&["storage", "server"]),
            notification: open(&["notification", "server"]),
            publish: guarded(&["notification", "server"]),
            callback: open(&["callback", "server"]),
            admin: guarded(&["admin", "server"]),
            services,
            chat: chat_guard(&["chat", "server"]),
            chats,
            admin_networks: networks(o, "server", "admin-networks").unwrap_or_else(loopback),
            trusted_proxies: networks(o, "server", "trusted-proxies").unwrap_or_default(),
        }
    }

    /// What a request to `path` must show.
    pub fn guard(&self, path: &str) -> &Guard {
        let rest = |prefix: &str| under(path, prefix);
        if rest("/genesys/1/storage").is_some() {
            &self.storage
        } else if rest("/genesys/1/notification/publish").is_some() {
            &self.publish
        } else if rest("/genesys/1/notification").is_some() {
            &self.notification
        } else if rest("/genesys/1/admin").is_some()
            || rest("/gmshub/callback").is_some()
            || rest(METRICS).is_some()
        {
            &self.admin
        } else if let Some(r) = rest("/genesys/1/service/callback") {
            self.services
                .get(first_segment(r))
                .unwrap_or(&self.callback)
        } else if let Some(r) = rest("/genesys/1/service") {
            self.services.get(first_segment(r)).unwrap_or(&self.server)
        } else if let Some(r) = rest("/genesys/2/chat") {
            self.chats.get(first_segment(r)).unwrap_or(&self.chat)
        } else {
            &Guard::Open
        }
    }

    /// The back office's guard (Node and callback admin, the router API).
    pub fn back_office(&self) -> &Guard {
        &self.admin
    }

    /// Whether `path` is the back office's (Node admin, callback admin,
    /// the router API, notification publish): the groups `guard` sends it
    /// to, so the two never disagree.
    pub fn is_back_office(&self, path: &str) -> bool {
        let guard = self.guard(path);
        std::ptr::eq(guard, &self.admin) || std::ptr::eq(guard, &self.publish)
    }

    /// Whether an anonymous back-office request from `address` is let in.
    pub fn admits(&self, address: Option<IpAddr>) -> bool {
        address.is_some_and(|a| within(&self.admin_networks, a))
    }

    /// Whether `[server] trusted-proxies` is set (else nothing is checked).
    pub fn has_trusted_proxies(&self) -> bool {
        !self.trusted_proxies.is_empty()
    }

    /// Whether requests from `peer` may say who their user and client are:
    /// always when no `[server] trusted-proxies` are set (GMS trusts
    /// `gms_user`), else only through those proxies.
    pub fn trusts(&self, peer: Option<IpAddr>) -> bool {
        self.trusted_proxies.is_empty() || peer.is_some_and(|p| within(&self.trusted_proxies, p))
    }

    /// The client behind a trusted proxy: the last address of
    /// `X-Forwarded-For` that is not itself a trusted proxy.
    pub fn forwarded_client(&self, forwarded_for: &str) -> Option<IpAddr> {
        if self.trusted_proxies.is_empty() {
            return None;
        }
        forwarded_for
            .rsplit(',')
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .find(|a| !within(&self.trusted_proxies, *a))
    }

    /// One line for the start-up log when the back office has no
    /// credentials.
    pub fn summary(&self) -> Option<String> {
        matches!(self.admin, Guard::Networks).then(|| {
            let networks: Vec<String> = self.admin_networks.iter().map(|n| n.to_string()).collect();
            format!(
                "back office (node and callback admin, router API, metrics{}) answers only to {} without \
                 credentials; set [admin] username and password to open it",
                if matches!(self.publish, Guard::Networks) {
                    ", notification publish"
                } else {
                    ""
                },
                networks.join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(ini: &str) -> Access {
        Access::from_options(&Options::from_ini(ini, &[]).unwrap())
    }

    fn user(g: &Guard) -> Option<&str> {
        match g {
            Guard::Basic(c) => Some(c.user.as_str()),
            _ => None,
        }
    }

    #[test]
    fn nothing_configured_leaves_gms_groups_open_and_the_back_office_local() {
        let a = access("");
        for open in [
            "/genesys/1/storage/3600",
            "/genesys/1/notification/subscription",
            "/genesys/1/service/request-chat",
            "/genesys/2/chat/customer-support",
            "/genesys/1/node",
            "/genesys/cometd",
        ] {
            assert!(matches!(a.guard(open), Guard::Open), "{open}");
        }
        for back in [
            "/genesys/1/admin/node/changestatus/OFFLINE",
            "/genesys/1/admin/callback/queues",
            "/gmshub/callback/cb/next",
            "/genesys/1/notification/publish",
        ] {
            assert!(matches!(a.guard(back), Guard::Networks), "{back}");
        }
        assert!(a.admits(Some([127, 0, 0, 1].into())));
        assert!(a.admits(Some("::ffff:127.0.0.1".parse().unwrap())));
        assert!(!a.admits(Some([10, 0, 0, 1].into())));
        assert!(!a.admits(None));
        assert!(a.summary().unwrap().contains("127.0.0.0/8"));
        assert!(matches!(a.guard("/genesys/1/storagex"), Guard::Open));
    }

    #[test]
    fn sections_override_the_server_and_a_password_turns_it_on() {
        let a = access(
            "[server]\nusername = u\npassword = p\nrealm = Banner\n\
             [storage]\nusername = su\npassword = sp\n\
             [notification]\nusername = nu\n\
             [callback]\nusername = cu\n\
             [service.cb]\n_type = builtin\n_service = callback\npassword = cbp\n\
             [service.request-chat]\nusername = rc\n\
             [chat]\ndisable_authentication = false\n\
             [chat.sales]\nusername = sales\n\
             [chat.open]\ndisable_authentication = true\n",
        );
        assert_eq!(a.realm, "Banner");
        assert_eq!(user(a.guard("/genesys/1/storage/1/2")), Some("su"));
        // A user name alone falls back to the server's password.
        assert_eq!(
            user(a.guard("/genesys/1/notification/subscription")),
            Some("nu")
        );
        assert_eq!(user(a.guard("/genesys/1/notification/publish")), Some("nu"));
        assert_eq!(user(a.guard("/genesys/1/service/callback/cb")), Some("cu"));
        assert_eq!(
            user(a.guard("/genesys/1/service/callback/other")),
            Some("cu")
        );
        assert_eq!(user(a.guard("/genesys/1/service/request-chat")), Some("rc"));
        assert_eq!(
            user(a.guard("/genesys/1/service/0123abcd/ixn/chat")),
            Some("u")
        );
        assert_eq!(user(a.guard("/genesys/2/chat/customer-support")), Some("u"));
        assert_eq!(
            user(a.guard("/genesys/2/chat/sales/123/send")),
            Some("sales")
        );
        assert!(matches!(a.guard("/genesys/2/chat/open"), Guard::Open));
        assert_eq!(user(a.guard("/genesys/1/admin/node/status")), Some("u"));
        assert!(a.summary().is_none());
    }

    #[test]
    fn chat_v2_is_open_by_default_and_a_password_without_a_user_refuses() {
        let a = access("[server]\nusername = u\npassword = p\n[storage]\nusername = \n");
        assert!(matches!(
            a.guard("/genesys/2/chat/customer-support"),
            Guard::Open
        ));
        let a =
            access("[storage]\npassword = p\n[server]\nadmin-networks = 10.1.0.0/16, 192.0.2.7\n");
        assert!(matches!(a.guard("/genesys/1/storage/60"), Guard::Refuse));
        assert!(a.admits(Some([10, 1, 2, 3].into())));
        assert!(a.admits(Some([192, 0, 2, 7].into())));
        assert!(
            !a.admits(Some([127, 0, 0, 1].into())),
            "listed networks replace loopback"
        );
    }

    #[test]
    fn only_trusted_proxies_name_users_and_clients_once_they_are_set() {
        let gms = access("");
        assert!(gms.trusts(Some([203, 0, 113, 9].into())) && gms.trusts(None));
        assert_eq!(gms.forwarded_client("198.51.100.1"), None);
        let a = access("[server]\ntrusted-proxies = 10.0.0.0/8\n");
        assert!(a.trusts(Some([10, 1, 1, 1].into())));
        assert!(!a.trusts(Some([203, 0, 113, 9].into())) && !a.trusts(None));
        assert_eq!(
            a.forwarded_client("1.2.3.4, 198.51.100.7, 10.0.0.2"),
            Some([198, 51, 100, 7].into()),
            "the nearest address that is not a proxy of ours (the first may be forged)"
        );
        assert_eq!(a.forwarded_client("10.0.0.3"), None);
    }
}
