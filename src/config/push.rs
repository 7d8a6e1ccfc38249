//! Push settings: the dispatcher's bounds, what chats in the background
//! push, and the providers the configuration describes: `[push]
//! pushEnabled` says which types are on, `[push]` is the default provider
//! and every `[push.provider.NAME]` a named one (its own options only:
//! nothing is inherited from `[push]`), each with a production channel and,
//! when all of a type's mandatory `debug.*` options are set, a debug one.
//! May use: the options.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use push::dispatcher::Providers;
use push::providers::apns::{p12_to_pem, Apns, ApnsAuth, ApnsConfig, ApsOptions};
use push::providers::fcm::{Fcm, FcmConfig, ServiceAccount};
use push::providers::http::{CustomHttp, HttpCallback, OrsCallback};
use push::providers::wns::{Wns, WnsConfig};
use push::{Provider, PushType};

use super::options::Options;

/// How notifications are pushed.
#[derive(Clone)]
pub struct PushSettings {
    /// `[push] workers` (32, 1 to 1000): notifications sent at once.
    pub workers: usize,
    /// `[push] queue` (100000): notifications waiting, per worker's share.
    pub queue: usize,
    /// `[push] in-flight` (16, 1 to 1000): deliveries one worker has under
    /// way at once, each to another device.
    pub in_flight: usize,
    /// `[push] filtering_chat_events` (default the typing notices): chat
    /// events not pushed to an app in the background.
    pub filtered_chat_events: Vec<String>,
    /// `[chat] push_notification_include_payload` (false): push the chat
    /// event itself, as JSON, instead of a line of text.
    pub chat_payload: bool,
    /// The configuration the providers are built from (at start, once the
    /// `comet` provider exists).
    options: Options,
}

impl std::fmt::Debug for PushSettings {
    /// Without the providers' options: they hold keys and passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushSettings")
            .field("workers", &self.workers)
            .field("queue", &self.queue)
            .field("in_flight", &self.in_flight)
            .field("filtered_chat_events", &self.filtered_chat_events)
            .field("chat_payload", &self.chat_payload)
            .finish_non_exhaustive()
    }
}

impl PushSettings {
    pub fn from_options(o: &Options) -> Self {
        Self {
            workers: o.ranged("push", "workers", 32, 1, 1000),
            queue: o.at_least("push", "queue", 100_000, 1),
            in_flight: o.ranged("push", "in-flight", 16, 1, 1000),
            filtered_chat_events: o
                .get("push", "filtering_chat_events")
                .unwrap_or("Notice.TypingStarted,Notice.TypingStopped")
                .split(',')
                .map(|e| e.trim().to_owned())
                .filter(|e| !e.is_empty())
                .collect(),
            chat_payload: o.flag("chat", "push_notification_include_payload", false),
            options: o.clone(),
        }
    }

    /// The providers for every enabled type whose mandatory options are
    /// set, with `comet` for the `comet` type.
    pub fn providers(&self, comet: Arc<dyn Provider>) -> Providers {
        providers(&self.options, comet)
    }
}

/// The options a push type's `[push]` provider cannot start without, in
/// the order they are looked for (`|` separates alternatives).
const MANDATORY: [(PushType, &[&str]); 5] = [
    (
        PushType::Ios,
        &["apple.topicName", "apple.authKey|apple.keystore"],
    ),
    (PushType::Fcm, &["fcm.serviceAccount"]),
    (PushType::Customhttp, &["customhttp.url"]),
    (PushType::Orscb, &["orscb.url"]),
    (PushType::Wns, &["wns.sid", "wns.clientSecret"]),
];

/// For each type `pushEnabled` lists whose `[push]` provider lacks a
/// mandatory option: the option, as a subscription's refusal and the
/// report say it.
pub fn unavailable(o: &Options) -> BTreeMap<PushType, String> {
    let enabled = enabled(o);
    let set = |name: &str| o.get("push", name).is_some_and(|v| !v.is_empty());
    let mut out = BTreeMap::new();
    for (kind, options) in MANDATORY {
        if !enabled.contains(&kind) {
            continue;
        }
        let missing = options
            .iter()
            .find(|alternatives| !alternatives.split('|').any(set));
        if let Some(missing) = missing {
            let named = match missing.split_once('|') {
                Some((one, other)) => format!("{one} (or {other})"),
                None => missing.to_string(),
            };
            let mut why = format!("[push] {named} is not set");
            if kind == PushType::Fcm && set("fcm.apiKey") {
                why.push_str(
                    " ([push] fcm.apiKey is for FCM's legacy API, which Google shut down in 2024)",
                );
            }
            o.report(
                false,
                format!(
                    "[push] pushEnabled lists {}, but {why}: it is off",
                    kind.name()
                ),
            );
            out.insert(kind, why);
        }
    }
    out
}

/// `[push] pushEnabled`: the types that are on (default `comet`); unknown
/// names are ignored with a warning.
fn enabled(o: &Options) -> BTreeSet<PushType> {
    let list = o.get("push", "pushEnabled").unwrap_or("comet");
    list.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .filter_map(|t| match PushType::parse(t) {
            None => {
                tracing::warn!(value = t, "[push] pushEnabled: unknown push type, ignored");
                None
            }
            Some(PushType::Gcm | PushType::Android) => {
                tracing::warn!(
                    value = t,
                    "Google retired GCM and C2DM: FCM (HTTP v1) serves these subscriptions"
                );
                Some(PushType::Fcm)
            }
            kind => kind,
        })
        .collect()
}

fn providers(o: &Options, comet: Arc<dyn Provider>) -> Providers {
    let enabled = enabled(o);
    // Only the event sections: a section read is a section known.
    let formats = push::Formats::new(
        o.section_names()
            .filter(|name| push::Formats::is_event_section(name))
            .filter_map(|name| o.section(name).map(|options| (name, options.clone()))),
    )
    .with_localized(localized(o));
    let mut out: Providers = Providers::new();
    let mut sections = vec![(String::new(), "push".to_owned())];
    for section in o.section_names() {
        if let Some(name) = section.strip_prefix("push.provider.") {
            // `push.provider.event...` sections format events; they are not providers.
            if name.is_empty()
                || name == "event"
                || name.starts_with("event.")
                || name.contains(".event")
            {
                continue;
            }
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                tracing::warn!(
                    section,
                    "a provider name has letters, digits, '_' and '-' only: ignored"
                );
                continue;
            }
            sections.push((name.to_owned(), section.to_owned()));
        }
    }
    let httpcb: Option<Arc<dyn Provider>> = enabled.contains(&PushType::Httpcb).then(|| {
        let timeout = o
            .seconds("push", "httpcb.connection_timeout", Duration::from_secs(5))
            .max(Duration::from_secs(1));
        let per_route = o
            .value::<usize>("push", "httpcb.connection_max_connections_per_route", 20)
            .max(2);
        let allowed =
            push::target::UrlPatterns::parse(o.get("push", "httpcb.allowed-urls").unwrap_or(""));
        Arc::new(HttpCallback::new(timeout, per_route, allowed).expect("an HTTP client"))
            as Arc<dyn Provider>
    });
    for (name, section) in &sections {
        for kind in &enabled {
            for debug in [false, true] {
                let key = (*kind, name.clone(), debug);
                let option = |base: &str| {
                    let full = if debug {
                        format!("debug.{base}")
                    } else {
                        base.to_owned()
                    };
                    o.get(section, &full)
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                };
                match kind {
                    PushType::Comet => {
                        out.insert(key, comet.clone());
                    }
                    PushType::Httpcb => {
                        if let Some(p) = &httpcb {
                            out.insert(key, p.clone());
                        }
                    }
                    PushType::Customhttp => match option("customhttp.url") {
                        Some(url) => match CustomHttp::new(&url, Duration::from_secs(30)) {
                            Ok(p) => {
                                out.insert(key, Arc::new(p));
                            }
                            Err(e) => tracing::warn!(section, "customhttp off: {e}"),
                        },
                        None if !debug => {
                            tracing::warn!(
                                section,
                                "customhttp off: mandatory option customhttp.url not set"
                            )
                        }
                        None => {}
                    },
                    PushType::Fcm => {
                        if let Some(p) = fcm(o, name, section, &option, debug, &formats) {
                            out.insert(key, p);
                        }
                    }
                    PushType::Orscb => match option("orscb.url") {
                        Some(url) => {
                            let event = o
                                .get(section, "orscb.event")
                                .filter(|e| !e.is_empty())
                                .unwrap_or("gms.notification");
                            match OrsCallback::new(&url, event, Duration::from_secs(30)) {
                                Ok(p) => {
                                    out.insert(key, Arc::new(p));
                                }
                                Err(e) => tracing::warn!(section, "orscb off: {e}"),
                            }
                        }
                        None if !debug => {
                            tracing::warn!(section, "orscb off: mandatory option orscb.url not set")
                        }
                        None => {}
                    },
                    PushType::Wns => {
                        let sid = option("wns.sid");
                        let secret = option("wns.clientSecret");
                        match (sid, secret) {
                            (Some(sid), Some(secret)) => {
                                let text = |k: &str| {
                                    o.get(section, k)
                                        .filter(|v| !v.is_empty())
                                        .map(str::to_owned)
                                };
                                let config = WnsConfig {
                                    sid,
                                    secret,
                                    token_url: option("wns.tokenUrl").unwrap_or_else(|| {
                                        push::providers::wns::TOKEN_URL.to_owned()
                                    }),
                                    notification_type: text("wns.notificationType")
                                        .unwrap_or_else(|| "wns/toast".into()),
                                    template: text("wns.xmlTemplate"),
                                    allowed_hosts: text("wns.allowed-hosts")
                                        .unwrap_or_else(|| push::providers::wns::HOSTS.into())
                                        .split(',')
                                        .map(|h| h.trim().to_owned())
                                        .filter(|h| !h.is_empty())
                                        .collect(),
                                };
                                match Wns::new(config) {
                                    Ok(p) => {
                                        out.insert(key, Arc::new(p));
                                    }
                                    Err(e) => tracing::warn!(section, "wns off: {e}"),
                                }
                            }
                            _ if !debug => tracing::warn!(
                                section,
                                "wns off: wns.sid and wns.clientSecret are mandatory"
                            ),
                            _ => {}
                        }
                    }
                    PushType::Ios => {
                        if let Some(p) = apns(o, name, section, &option, debug, &formats) {
                            out.insert(key, p);
                        }
                    }
                    other => {
                        if !debug {
                            tracing::warn!(
                                section,
                                kind = other.name(),
                                "this push type is not supported yet: off"
                            );
                        }
                    }
                }
            }
        }
    }
    out
}

/// The FCM provider of a section's channel: `fcm.serviceAccount` (a Google
/// service account key file, JSON) and optionally `fcm.url`, `fcm.tokenUrl`
/// (with `debug.` twins), `fcm.title`, `fcm.body`.
fn fcm(
    o: &Options,
    name: &str,
    section: &str,
    option: &dyn Fn(&str) -> Option<String>,
    debug: bool,
    formats: &push::Formats,
) -> Option<Arc<dyn Provider>> {
    let Some(path) = option("fcm.serviceAccount") else {
        if !debug {
            if option("fcm.apiKey").is_some() {
                tracing::error!(
                    section,
                    "fcm.apiKey configures FCM's legacy API, which Google shut down in 2024: \
                     give fcm.serviceAccount (a service account key file) for FCM HTTP v1; fcm is off"
                );
            } else {
                tracing::warn!(
                    section,
                    "fcm off: mandatory option fcm.serviceAccount not set"
                );
            }
        }
        return None;
    };
    let account: ServiceAccount = match std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
    {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(
                section,
                path,
                "fcm off: cannot read the service account: {e}"
            );
            return None;
        }
    };
    let text = |name: &str| {
        o.get(section, name)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let config = FcmConfig {
        account,
        send_url: option("fcm.url"),
        token_url: option("fcm.tokenUrl"),
        title: text("fcm.title"),
        body: text("fcm.body"),
        provider: name.to_owned(),
        formats: formats.clone(),
    };
    match Fcm::new(config) {
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            tracing::error!(section, "fcm off: {e}");
            None
        }
    }
}

/// The APNs provider of a section's channel: `apple.topicName` and either
/// token authentication (`apple.authKey`, the .p8 key file, `apple.keyId`,
/// `apple.teamId`) or a certificate (`apple.keystore`, a .p12, with
/// `apple.keystorePassword`), with `debug.` twins for the debug channel,
/// which talks to Apple's sandbox; `apple.url` and `apple.caFile`
/// let a proxy or stand-in take Apple's place; the `aps` dictionary comes
/// from `apple.title`, `apple.alertMessage.body`, `apple.alertMessage.loc-key`,
/// `apple.alertMessage.loc-args`, `apple.alertMessage.title-loc-key`,
/// `apple.sound`, `apple.badge`, `apple.category`, and the headers from
/// `apple.pushType`, `apple.priority`, `apple.expiration`, `apple.collapseId`.
fn apns(
    o: &Options,
    name: &str,
    section: &str,
    option: &dyn Fn(&str) -> Option<String>,
    debug: bool,
    formats: &push::Formats,
) -> Option<Arc<dyn Provider>> {
    let Some(topic) = option("apple.topicName") else {
        if !debug {
            tracing::warn!(section, "ios off: mandatory option apple.topicName not set");
        }
        return None;
    };
    let read = |what: &str, path: &str| -> Option<Vec<u8>> {
        std::fs::read(path)
            .map_err(|e| tracing::error!(section, path, "ios off: cannot read {what}: {e}"))
            .ok()
    };
    // Token authentication (.p8), else the certificate (.p12) GMS configures.
    let token = ["apple.authKey", "apple.keyId", "apple.teamId"].map(option);
    let auth = match (token, option("apple.keystore")) {
        ([Some(key_file), Some(key_id), Some(team_id)], _) => ApnsAuth::Token {
            key_pem: String::from_utf8_lossy(&read("apple.authKey", &key_file)?).into_owned(),
            key_id,
            team_id,
        },
        (_, Some(keystore)) => {
            let password = option("apple.keystorePassword").unwrap_or_default();
            match p12_to_pem(&read("apple.keystore", &keystore)?, &password) {
                Ok(identity_pem) => ApnsAuth::Certificate { identity_pem },
                Err(e) => {
                    tracing::error!(section, "ios off: {e}");
                    return None;
                }
            }
        }
        _ => {
            if !debug {
                tracing::warn!(
                    section,
                    "ios off: give apple.authKey, apple.keyId and apple.teamId (token authentication) \
                     or apple.keystore and apple.keystorePassword (certificate)"
                );
            }
            return None;
        }
    };
    let ca_pem = match option("apple.caFile") {
        Some(path) => Some(String::from_utf8_lossy(&read("apple.caFile", &path)?).into_owned()),
        None => None,
    };
    let text = |name: &str| {
        o.get(section, name)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let aps = ApsOptions {
        title: text("apple.title"),
        body: text("apple.alertMessage.body"),
        loc_key: text("apple.alertMessage.loc-key"),
        loc_args: text("apple.alertMessage.loc-args")
            .map(|a| a.split(',').map(|x| x.trim().to_owned()).collect())
            .unwrap_or_default(),
        title_loc_key: text("apple.alertMessage.title-loc-key"),
        sound: text("apple.sound"),
        badge: text("apple.badge").and_then(|b| b.parse().ok()),
        category: text("apple.category"),
        push_type: text("apple.pushType"),
        priority: text("apple.priority").and_then(|p| p.parse().ok()),
        expiration: text("apple.expiration").and_then(|e| e.parse().ok()),
        collapse_id: text("apple.collapseId"),
    };
    let url = option("apple.url").unwrap_or_else(|| {
        (if debug {
            push::providers::apns::SANDBOX
        } else {
            push::providers::apns::PRODUCTION
        })
        .to_owned()
    });
    let config = ApnsConfig {
        url,
        topic,
        auth,
        ca_pem,
        aps,
        provider: name.to_owned(),
        formats: formats.clone(),
    };
    match Apns::new(config) {
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            tracing::error!(section, "ios off: {e}");
            None
        }
    }
}

/// `[push] localizationFileLocation`: an INI file with one section per
/// language and, in it, a text per event tag (or tag prefix), e.g.
/// `[fr]` / `chat.newagentmessage = Nouveau message de votre conseiller`.
/// (GMS names the option without documenting a format; this is gmshub's.)
fn localized(o: &Options) -> HashMap<String, HashMap<String, String>> {
    let Some(path) = o
        .get("push", "localizationFileLocation")
        .filter(|p| !p.is_empty())
    else {
        return HashMap::new();
    };
    match ini::Ini::load_from_file(path) {
        Ok(file) => file
            .iter()
            .filter_map(|(section, props)| {
                section.map(|lang| {
                    (
                        lang.to_owned(),
                        props
                            .iter()
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .collect(),
                    )
                })
            })
            .collect(),
        Err(e) => {
            tracing::error!(path, "[push] localizationFileLocation cannot be read: {e}");
            HashMap::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatcher_bounds_out_of_range_give_the_defaults() {
        let read = |ini: &str| PushSettings::from_options(&Options::from_ini(ini, &[]).unwrap());
        let d = read("");
        assert_eq!((d.workers, d.queue, d.in_flight), (32, 100_000, 16));
        let low = read("[push]\nworkers = 0\nqueue = 0\nin-flight = 0\n");
        assert_eq!((low.workers, low.queue, low.in_flight), (32, 100_000, 16));
        let high = read("[push]\nworkers = 5000\nin-flight = 1000\n");
        assert_eq!((high.workers, high.in_flight), (32, 1000));
        assert!(
            !format!("{d:?}").contains("options"),
            "no option values in Debug"
        );
    }
}
