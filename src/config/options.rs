//! Configuration in GMS's own shape: sections and options, read from an INI
//! file (`[section]` / `option = value`, the form GMS options are exported
//! in) and overridden by environment variables.
//!
//! An override is named `GMSHUB__<SECTION>__<OPTION>`, upper-cased, with
//! every character that is not a letter or digit written `_`: for example
//! `GMSHUB__COMETD__MAXINTERVAL=5000` or `GMSHUB__SERVER__LISTEN=0.0.0.0:8080`.
//!
//! As in GMS, a value that cannot be read falls back to the option's default
//! with a warning; it does not stop the server. What the settings read is
//! recorded, so that what the file has and nothing reads (a misspelt option
//! or section) can be reported with the nearest name that is read
//! ([`Options::unread`]): the reading code is the table of known options.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Display;
use std::sync::Arc;

use parking_lot::Mutex;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read { path: String, source: ini::Error },
    #[error("cannot read the configuration: {0}")]
    Parse(ini::ParseError),
}

/// Values are taken as written, as GMS's Config Server keeps them: no
/// quote removal (CSP's `'self'`) and no backslash escapes (Windows paths,
/// regular expressions such as `https://www\.example\.com`).
const RAW: ini::ParseOption = ini::ParseOption {
    enabled_quote: false,
    enabled_escape: false,
    enabled_indented_mutiline_value: false,
    enabled_preserve_key_leading_whitespace: false,
};

/// Every option of every section, as text. Not `Debug`: values include
/// passwords and keys.
#[derive(Default, Clone)]
pub struct Options {
    sections: HashMap<String, HashMap<String, String>>,
    /// Environment overrides, keyed by their normalised variable name.
    env: HashMap<String, String>,
    /// What has been read (shared by clones).
    read: Arc<Mutex<Read>>,
}

#[derive(Default)]
struct Read {
    /// (section, option) asked for, present or not.
    options: BTreeSet<(String, String)>,
    /// Sections taken whole (their options are the reader's to judge).
    whole: BTreeSet<String>,
}

/// Something the file has that nothing read, with the nearest name that is
/// read, if one is near.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unread {
    Section {
        section: String,
        nearest: Option<String>,
    },
    Option {
        section: String,
        option: String,
        nearest: Option<String>,
    },
}

impl Display for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unread::Section { section, nearest } => {
                write!(
                    f,
                    "[{section}]: gmshub reads no option of this section (ignored)"
                )?;
                if let Some(n) = nearest {
                    write!(f, "; did you mean [{n}]?")?;
                }
            }
            Unread::Option {
                section,
                option,
                nearest,
            } => {
                write!(
                    f,
                    "[{section}] {option}: not an option gmshub reads here (ignored)"
                )?;
                if let Some(n) = nearest {
                    write!(f, "; did you mean {n}?")?;
                }
            }
        }
        Ok(())
    }
}

/// Reports what a configuration had that nothing read, once every reader
/// has run (the push providers read theirs when the hub is built). Shares
/// the record of what was read with the options it was made from.
#[derive(Clone)]
pub struct UnreadReport(Options);

impl UnreadReport {
    pub fn of(options: &Options) -> Self {
        Self(options.clone())
    }

    /// One warning per section or option that nothing read.
    pub fn log(&self) {
        for unread in self.0.unread() {
            tracing::warn!("{unread}");
        }
    }
}

impl std::fmt::Debug for UnreadReport {
    /// Without the options: they hold keys and passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnreadReport")
    }
}

/// The candidate nearest to `name` (case aside), if it is near enough to be
/// a misspelling of it: one edit (a letter added, dropped, changed or two
/// swapped) per five letters, at least one.
fn nearest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let name = name.to_ascii_lowercase();
    candidates
        .map(|c| {
            (
                strsim::damerau_levenshtein(&name, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(d, c)| *d > 0 && *d <= (name.len().max(c.len()) / 5).max(1))
        .min()
        .map(|(_, c)| c.to_owned())
}

fn env_key(section: &str, option: &str) -> String {
    let norm = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("GMSHUB__{}__{}", norm(section), norm(option))
}

fn sections_of(ini: &ini::Ini) -> HashMap<String, HashMap<String, String>> {
    let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
    for (section, props) in ini.iter() {
        let entry = sections
            .entry(section.unwrap_or("default").to_owned())
            .or_default();
        for (k, v) in props.iter() {
            entry.insert(k.to_owned(), v.to_owned());
        }
    }
    sections
}

impl Options {
    /// Reads `path` (if given) and the process environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let sections = match path {
            Some(path) => {
                sections_of(&ini::Ini::load_from_file_opt(path, RAW).map_err(|source| {
                    ConfigError::Read {
                        path: path.display().to_string(),
                        source,
                    }
                })?)
            }
            None => HashMap::new(),
        };
        let env = std::env::vars()
            .filter(|(k, _)| k.starts_with("GMSHUB__"))
            .collect();
        Ok(Self {
            sections,
            env,
            read: Arc::default(),
        })
    }

    /// Builds options from literal text and the given overrides (tests,
    /// examples, a hub built in-process), instead of a file and the process
    /// environment.
    pub fn from_ini(text: &str, env: &[(&str, &str)]) -> Result<Self, ConfigError> {
        Ok(Self {
            sections: sections_of(
                &ini::Ini::load_from_str_opt(text, RAW).map_err(ConfigError::Parse)?,
            ),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            read: Arc::default(),
        })
    }

    /// The raw value of an option: the environment wins over the file.
    pub fn get(&self, section: &str, option: &str) -> Option<&str> {
        self.read
            .lock()
            .options
            .insert((section.to_owned(), option.to_owned()));
        self.env
            .get(&env_key(section, option))
            .or_else(|| self.sections.get(section)?.get(option))
            .map(|v| v.trim())
    }

    /// An option parsed as `T`, or `default` (with a warning) when it is
    /// absent or unreadable.
    pub fn value<T: FromStr + Display>(&self, section: &str, option: &str, default: T) -> T {
        match self.get(section, option) {
            None | Some("") => default,
            Some(text) => text.parse().unwrap_or_else(|_| {
                tracing::warn!(section, option, value = text, %default, "wrong value, using the default");
                default
            }),
        }
    }

    /// A boolean option; GMS writes them `true`/`false`, some exports `1`/`0`.
    pub fn flag(&self, section: &str, option: &str, default: bool) -> bool {
        match self
            .get(section, option)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("") => default,
            Some("true" | "1" | "yes" | "on") => true,
            Some("false" | "0" | "no" | "off") => false,
            Some(other) => {
                tracing::warn!(
                    section,
                    option,
                    value = other,
                    default,
                    "wrong value, using the default"
                );
                default
            }
        }
    }

    /// A section's options as the file has them (without environment
    /// overrides, which cannot name new options).
    pub fn section(&self, name: &str) -> Option<&HashMap<String, String>> {
        self.read.lock().whole.insert(name.to_owned());
        self.sections.get(name)
    }

    /// What the file has that nothing has read so far, by section name,
    /// each with the nearest name that was read.
    pub fn unread(&self) -> Vec<Unread> {
        let read = self.read.lock();
        let mut names: Vec<&String> = self.sections.keys().collect();
        names.sort();
        let read_sections: BTreeSet<&str> = read
            .options
            .iter()
            .map(|(s, _)| s.as_str())
            .chain(read.whole.iter().map(String::as_str))
            .collect();
        let mut out = Vec::new();
        for section in names {
            // An empty section (the INI reader's general one) says nothing.
            if read.whole.contains(section) || self.sections[section].is_empty() {
                continue;
            }
            if !read_sections.contains(section.as_str()) {
                out.push(Unread::Section {
                    section: section.clone(),
                    nearest: nearest(section, read_sections.iter().copied()),
                });
                continue;
            }
            let known = || {
                read.options
                    .iter()
                    .filter(|(s, _)| s == section)
                    .map(|(_, o)| o.as_str())
            };
            let mut options: Vec<&String> = self.sections[section].keys().collect();
            options.sort();
            for option in options {
                if !read.options.contains(&(section.clone(), option.clone())) {
                    out.push(Unread::Option {
                        section: section.clone(),
                        option: option.clone(),
                        nearest: nearest(option, known()),
                    });
                }
            }
        }
        out
    }

    /// The sections the configuration file has.
    pub fn section_names(&self) -> impl Iterator<Item = &str> {
        self.sections.keys().map(String::as_str)
    }

    /// A duration option counted in milliseconds (CometD's unit).
    pub fn millis(&self, section: &str, option: &str, default: Duration) -> Duration {
        Duration::from_millis(self.value(section, option, default.as_millis() as u64))
    }

    /// A duration option counted in seconds (GMS's usual unit).
    pub fn seconds(&self, section: &str, option: &str, default: Duration) -> Duration {
        Duration::from_secs(self.value(section, option, default.as_secs()))
    }

    /// A list of listen addresses (`host:port`, separated by commas or
    /// spaces): `None` when the option names none (absent, empty, or only
    /// separators). Unlike other values, a wrong address is an error:
    /// serving on another address than the one written would open or hide a
    /// port.
    pub fn addresses(
        &self,
        section: &str,
        option: &str,
    ) -> Result<Option<Vec<std::net::SocketAddr>>, String> {
        let text = self.get(section, option).unwrap_or("");
        let addresses = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|a| !a.is_empty())
            .map(|a| {
                a.parse()
                    .map_err(|_| format!("[{section}] {option}: {a:?} is not an address and port"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((!addresses.is_empty()).then_some(addresses))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_are_taken_as_written() {
        let o = super::Options::from_ini(
            "[a]\npath = C:\\GMS\\certs\\app.p12\nre = https://www\\.example\\.com\ncsp = 'self' x\n",
            &[],
        )
        .unwrap();
        assert_eq!(o.get("a", "path"), Some("C:\\GMS\\certs\\app.p12"));
        assert_eq!(o.get("a", "re"), Some("https://www\\.example\\.com"));
        assert_eq!(o.get("a", "csp"), Some("'self' x"));
    }

    use super::*;

    #[test]
    fn what_nothing_reads_is_reported_with_the_nearest_name() {
        let o = Options::from_ini(
            "[chat]\n_client_timout = 5\n_client_timeout = 6\n[chta]\nx = 1\n\
             [cometd]\nmaxInterval = 5\nzzzz = 1\n[port_restrictions]\n/a = 8080\n",
            &[],
        )
        .unwrap();
        for (section, option) in [
            ("chat", "_client_timeout"),
            ("cometd", "maxInterval"),
            ("cometd", "timeout"),
        ] {
            o.get(section, option);
        }
        o.section("port_restrictions");
        let unread: Vec<String> = o.unread().iter().map(ToString::to_string).collect();
        assert_eq!(
            unread,
            [
                "[chat] _client_timout: not an option gmshub reads here (ignored); did you mean _client_timeout?",
                "[chta]: gmshub reads no option of this section (ignored); did you mean [chat]?",
                "[cometd] zzzz: not an option gmshub reads here (ignored)",
            ]
        );
    }

    #[test]
    fn file_values_and_environment_overrides() {
        let options = Options::from_ini(
            "[cometd]\nmaxInterval = 5000\ntimeout = soon\n[sml]\nsuspending-wait-timeout = 20\n",
            &[("GMSHUB__SML__SUSPENDING_WAIT_TIMEOUT", "7")],
        )
        .unwrap();
        assert_eq!(
            options.millis("cometd", "maxInterval", Duration::ZERO),
            Duration::from_millis(5000)
        );
        // Unreadable: the default, as GMS does.
        assert_eq!(
            options.millis("cometd", "timeout", Duration::from_secs(30)),
            Duration::from_secs(30)
        );
        assert_eq!(
            options.seconds("sml", "suspending-wait-timeout", Duration::from_secs(10)),
            Duration::from_secs(7)
        );
        assert!(options.flag("cometd", "absent", true));
    }
}
