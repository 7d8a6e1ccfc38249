//! SIGHUP: the TLS certificate read again, and the configuration file. What
//! GMS changes at run time is applied to the running hub — credentials and
//! access groups, CORS, the DoS filter, the log's level and filters, the
//! access log and the parameter log; any other change is logged as waiting
//! for the next start. A file with an error is not applied at all. The log
//! names options, never their values.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::tls::Certificates;
use crate::api::live::{LiveRules, Rules};
use crate::config::{Options, Settings};
use crate::observe;

/// Whether a change of `section`/`option` takes effect at once.
pub fn dynamic(section: &str, option: &str) -> bool {
    const CREDENTIALS: [&str; 6] = [
        "username",
        "password",
        "disable_authentication",
        "realm",
        "admin-networks",
        "trusted-proxies",
    ];
    match section {
        "cors" | "dos-filter" | "log-filter" | "log-filter-data" | "admin" => true,
        // Where the log goes is set once.
        "log" => !matches!(option, "all" | "format" | "segment" | "expire"),
        "server" | "storage" | "notification" | "callback" | "chat" => {
            CREDENTIALS.contains(&option)
        }
        s if s.starts_with("chat.") || s.starts_with("service.") => CREDENTIALS.contains(&option),
        _ => false,
    }
}

/// What a reload works on: the options in force, and the rules it replaces.
pub struct Reloader {
    pub options: Options,
    pub live: LiveRules,
    pub certificates: Option<Arc<Certificates>>,
    /// Changes read but waiting for the next start.
    pending: BTreeSet<(String, String)>,
}

impl Reloader {
    pub fn new(options: Options, live: LiveRules) -> Self {
        Self {
            options,
            live,
            certificates: None,
            pending: BTreeSet::new(),
        }
    }

    /// Reads everything again and applies what may be applied.
    pub fn reload(&mut self) {
        if let Some(certificates) = &self.certificates {
            match certificates.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => tracing::error!("{e}; keeping the current certificate"),
            }
        }
        let Some(read) = self.options.reread() else {
            return tracing::info!("SIGHUP: no configuration file to read again");
        };
        let file = self.options.file_name().unwrap_or("").to_owned();
        let options = match read {
            Ok(options) => options,
            Err(e) => return tracing::error!("configuration not reloaded: {e}"),
        };
        let settings = Settings::from_options(&options);
        let errors = settings.report.errors();
        if !errors.is_empty() {
            return tracing::error!("configuration not reloaded: {}", errors.join("; "));
        }
        for problem in options.problems() {
            tracing::warn!("{problem}");
        }
        let changed = self.options.changed(&options);
        let (applied, later): (Vec<_>, Vec<_>) =
            changed.into_iter().partition(|(s, o)| dynamic(s, o));
        self.pending.extend(later);
        if !applied.is_empty() {
            self.live.replace(Rules::of(&settings));
            if !observe::log::set_filter(&settings.log.filter) {
                tracing::debug!("the log level follows RUST_LOG, not [log]");
            }
            observe::log::log_parameters(
                settings
                    .log
                    .parameters
                    .then(|| settings.log.filters.clone()),
            );
        }
        let names = |list: &mut dyn Iterator<Item = &(String, String)>| -> String {
            let names: Vec<String> = list.map(|(s, o)| format!("[{s}] {o}")).collect();
            if names.is_empty() {
                "nothing".into()
            } else {
                names.join(", ")
            }
        };
        tracing::info!(
            "configuration reloaded from {file}: applied {}; at the next start: {}",
            names(&mut applied.iter()),
            names(&mut self.pending.iter()),
        );
        self.options = options;
    }
}

/// Reloads on every SIGHUP until aborted.
pub fn on_hangup(mut reloader: Reloader) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return tracing::warn!("cannot watch SIGHUP: nothing is reloaded");
        };
        while hangup.recv().await.is_some() {
            reloader.reload();
        }
    })
}
