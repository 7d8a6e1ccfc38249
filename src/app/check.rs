//! `gmshub check-config FILE` and `gmshub config defaults`: the
//! configuration read as a start reads it (the settings, then every push
//! provider), without opening anything; and every option the readers read,
//! with its default, as an INI file annotated from `docs/configuration.md`.
//! Both come from the reading code itself (the options record what is read
//! and with which default), so neither can drift from what a start does.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{Options, Problem, Settings};

/// Stands in for the `comet` push type, which needs a running engine.
struct NoComet;

#[async_trait::async_trait]
impl push::Provider for NoComet {
    async fn send(&self, _: &push::Notification) -> push::Outcome {
        push::Outcome::Failed("not running".into())
    }
}

/// What a start would say of `options`: its errors (which refuse it) and
/// its warnings, in the order a start meets them.
pub fn check(options: &Options) -> Vec<Problem> {
    let settings = Settings::from_options(options);
    settings.push.providers(Arc::new(NoComet));
    let mut found = Vec::new();
    let mut fatal = |text: String| found.push(Problem { fatal: true, text });
    if let Err(e) = &settings.listen {
        fatal(e.clone());
    }
    if let Err(e) = &settings.tls {
        fatal(e.clone());
    }
    found.extend(settings.report.findings());
    found
}

/// Configurations whose readers, between them, read every option: some
/// options are read only once another turns their part on.
const PROBES: [&str; 6] = [
    "",
    "[store]\ntype = redis\n[cluster]\nenabled = true\n",
    "[store]\ntype = cassandra\n[cassandra]\nsecured = true\n",
    "[tls]\nlisten = 127.0.0.1:8443\n",
    "[push]\npushEnabled = comet,ios,fcm,customhttp,httpcb,orscb,wns\n",
    "[storage]\nallow-file-control = true\n",
];

/// One option as the readers read it.
pub struct Known {
    /// Its default as text, when it has a literal one.
    pub default: Option<String>,
    /// Whether a start with no configuration reads it (others are read
    /// once another option turns their part on).
    pub always: bool,
}

/// Every option the readers read under the probes, by section and option.
pub fn catalogue() -> BTreeMap<(String, String), Known> {
    let mut all = BTreeMap::new();
    for (i, probe) in PROBES.iter().enumerate() {
        let options = Options::from_ini(probe, &[]).expect("the probes are INI");
        check(&options);
        for (key, default) in options.defaults() {
            all.entry(key).or_insert(Known {
                default,
                always: i == 0,
            });
        }
    }
    all
}

/// What `docs/configuration.md` says of the options: the meaning of each
/// that a table row names, and every option it mentions at all, by section
/// (a row or a backticked name under a heading naming the section, or
/// `` `[section] option` `` anywhere).
pub struct Documented {
    pub meanings: BTreeMap<(String, String), &'static str>,
    pub mentioned: std::collections::BTreeSet<(String, String)>,
}

pub fn documented() -> Documented {
    let mut doc = Documented {
        meanings: BTreeMap::new(),
        mentioned: Default::default(),
    };
    let mut sections: Vec<String> = Vec::new();
    // Whether the current table's first column is the section.
    let mut by_section = false;
    for line in include_str!("../../docs/configuration.md").lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            sections = heading
                .split('`')
                .filter_map(|part| part.strip_prefix('[')?.strip_suffix(']'))
                .map(str::to_owned)
                .collect();
            continue;
        }
        let names: Vec<&str> = line.split('`').skip(1).step_by(2).collect();
        for name in &names {
            match name.strip_prefix('[').and_then(|n| n.split_once("] ")) {
                Some((section, option)) => {
                    doc.mentioned
                        .insert((section.to_owned(), option.to_owned()));
                }
                None => doc
                    .mentioned
                    .extend(sections.iter().map(|s| (s.clone(), name.to_string()))),
            }
        }
        if line.starts_with("| section | option") {
            by_section = true;
        } else if !line.starts_with('|') {
            by_section = false;
        }
        let cells: Vec<&str> = line.split(" | ").collect();
        if cells.len() < 3 || !line.starts_with("| `") {
            continue;
        }
        let meaning = cells[cells.len() - 1].trim_end_matches(" |");
        let (own, options) = if by_section {
            let section = cells[0].trim_start_matches("| ").trim_matches('`');
            (vec![section.to_owned()], cells[1])
        } else {
            (sections.clone(), cells[0].trim_start_matches("| "))
        };
        // `x` (and `debug.` twins): `debug.x` too.
        let twins = options.contains("`debug.` twin");
        let names = options
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|n| *n != "debug.")
            .flat_map(|n| {
                let twin = twins.then(|| format!("debug.{n}"));
                std::iter::once(n.to_owned()).chain(twin)
            });
        for name in names {
            for section in &own {
                doc.mentioned.insert((section.clone(), name.clone()));
                doc.meanings
                    .entry((section.clone(), name.clone()))
                    .or_insert(meaning);
            }
        }
    }
    doc
}

/// The annotated INI of every option with its default. What a start
/// with no configuration reads, and has a literal default, is set; the
/// rest is commented out: options without a default (unset), with a
/// computed one (a random node id, the open-files limit), or read only
/// once another option turns their part on (a store's, TLS's, a push
/// type's).
pub fn defaults_ini() -> String {
    let meanings = documented().meanings;
    let mut out = String::from(
        "; gmshub: every option with its default (gmshub config defaults).\n\
         ; Given as it is to --config, it starts the same hub as no file at all.\n",
    );
    let mut section = String::new();
    for (key, known) in catalogue() {
        let (s, option) = &key;
        // A section whose presence means something (`[chat]` makes every
        // name a chat service, `[service.NAME]` a service) is shown, not set.
        let shown_only = s == "chat" || s.contains('.');
        if *s != section {
            let mark = if shown_only { ";" } else { "" };
            out.push_str(&format!("\n{mark}[{s}]\n"));
            if shown_only {
                out.push_str("; (this section's presence changes what is served: shown only)\n");
            }
            section = s.clone();
        }
        if let Some(meaning) = meanings.get(&key) {
            out.push_str(&format!("; {meaning}\n"));
        }
        let value = known.default.as_deref().unwrap_or("");
        let set = known.always && known.default.is_some() && !shown_only;
        let mark = if set { "" } else { ";" };
        out.push_str(&format!("{mark}{option} = {value}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_read_is_in_the_documentation() {
        let doc = documented();
        let missing: Vec<String> = catalogue()
            .into_keys()
            .filter(|key| !doc.mentioned.contains(key))
            .map(|(s, o)| format!("[{s}] {o}"))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/configuration.md does not mention {} option(s): {}",
            missing.len(),
            missing.join(", ")
        );
    }
}

#[cfg(test)]
mod fed_back {
    use super::*;

    /// The settings as Debug shows them, without the random node id.
    fn shown(options: &Options) -> String {
        let mut settings = Settings::from_options(options);
        settings.node_id.clear();
        settings.bayeux.client_id_prefix.clear();
        format!("{settings:?}")
    }

    #[test]
    fn the_defaults_file_is_read_without_a_finding_and_changes_nothing() {
        let text = defaults_ini();
        let fed = Options::from_ini(&text, &[]).unwrap();
        let findings: Vec<String> = check(&fed).iter().map(ToString::to_string).collect();
        assert!(findings.is_empty(), "{findings:#?}");
        let fed = Options::from_ini(&text, &[]).unwrap();
        assert_eq!(shown(&fed), shown(&Options::default()));
    }
}
