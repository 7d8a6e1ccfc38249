//! The push providers the configuration describes: `[push] pushEnabled`
//! says which types are on, `[push]` is the default provider and every
//! `[push.provider.NAME]` a named one (its own options only: nothing is
//! inherited from `[push]`), each with a production channel and, when all of
//! a type's mandatory `debug.*` options are set, a debug one.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use push::dispatcher::Providers;
use push::providers::http::{CustomHttp, HttpCallback};
use push::{Provider, PushType};

use crate::config::Options;

/// `[push] pushEnabled`: the types that are on (default `comet`); unknown
/// names are ignored with a warning.
pub fn enabled(o: &Options) -> BTreeSet<PushType> {
    let list = o.get("push", "pushEnabled").unwrap_or("comet");
    list.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .filter_map(|t| {
            let kind = PushType::parse(t);
            if kind.is_none() {
                tracing::warn!(value = t, "[push] pushEnabled: unknown push type, ignored");
            }
            kind
        })
        .collect()
}

/// The providers for every enabled type whose mandatory options are set.
pub fn providers(o: &Options, comet: Arc<dyn Provider>) -> Providers {
    let enabled = enabled(o);
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
        Arc::new(HttpCallback::new(timeout, per_route).expect("an HTTP client"))
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
