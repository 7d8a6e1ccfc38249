//! Configuration in GMS's own shape: sections and options, read from an INI
//! file (`[section]` / `option = value`, the form GMS options are exported
//! in) and overridden by environment variables.
//!
//! An override is named `GMSHUB__<SECTION>__<OPTION>`, upper-cased, with
//! every character that is not a letter or digit written `_`: for example
//! `GMSHUB__COMETD__MAXINTERVAL=5000` or `GMSHUB__SERVER__LISTEN=0.0.0.0:8080`.
//!
//! As in GMS, a value that cannot be read falls back to the option's default
//! with a warning; it does not stop the server.

use std::collections::HashMap;
use std::fmt::Display;
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
        Ok(Self { sections, env })
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
        })
    }

    /// The raw value of an option: the environment wins over the file.
    pub fn get(&self, section: &str, option: &str) -> Option<&str> {
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
        self.sections.get(name)
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
