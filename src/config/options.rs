//! Configuration in GMS's own shape: sections and options, read from an INI
//! file (`[section]` / `option = value`, the form GMS options are exported
//! in) and overridden by environment variables.
//!
//! An override is named `GMSHUB__<SECTION>__<OPTION>`, upper-cased, with
//! every character that is not a letter or digit written `_`: for example
//! `GMSHUB__COMETD__MAXINTERVAL=5000` or `GMSHUB__SERVER__LISTEN=0.0.0.0:8080`.
//!
//! As in GMS, a value that cannot be read, or is out of its range, falls
//! back to the option's default with a warning naming the value, where it
//! was written (file and line, or the variable) and what was allowed; it
//! does not stop the server. A value outside an option's fixed set of values
//! does: running on something else than what was asked would hide the
//! mistake. What the settings read is recorded with its default, so that
//! what the file has and nothing reads (a misspelt option or section) can be
//! reported with the nearest name that is read ([`Options::unread`]), and the
//! defaults listed ([`Options::defaults`]): the reading code is the table of
//! known options.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// The file the sections came from, and the line of each option.
    file: Option<Arc<SourceFile>>,
    /// What has been read (shared by clones).
    read: Arc<Mutex<Read>>,
}

struct SourceFile {
    name: String,
    /// Where to read it again (none for a text given in-process).
    path: Option<std::path::PathBuf>,
    lines: HashMap<(String, String), usize>,
}

#[derive(Default)]
struct Read {
    /// (section, option) asked for, present or not, with its default as
    /// text when the reader gave one.
    options: BTreeMap<(String, String), Option<String>>,
    /// Sections taken whole (their options are the reader's to judge).
    whole: BTreeSet<String>,
    /// What reading found wrong, each once, in the order found.
    problems: Vec<Problem>,
}

/// Something wrong with a value: a warning (the default was used instead)
/// or an error (the start is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub fatal: bool,
    pub text: String,
}

impl Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The line of each `option = value` of an INI text, by section (a line
/// index for messages; the values come from the INI reader).
fn line_index(text: &str) -> HashMap<(String, String), usize> {
    let mut section = "default".to_owned();
    let mut lines = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_owned();
        } else if let Some(end) = line.find(['=', ':']) {
            lines
                .entry((section.clone(), line[..end].trim().to_owned()))
                .or_insert(n + 1);
        }
    }
    lines
}

/// What a value of type `T` is, for a message.
fn expected<T>() -> &'static str {
    match std::any::type_name::<T>() {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        _ => "a value of this option",
    }
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

/// What reading a configuration found, once every reader has run (the push
/// providers read theirs when the hub is built): problems with values, in
/// the order found, then what the file has and nothing read. Shares the
/// record of what was read with the options it was made from.
#[derive(Clone)]
pub struct ConfigReport(Options);

impl ConfigReport {
    pub fn of(options: &Options) -> Self {
        Self(options.clone())
    }

    /// The options reported on.
    pub fn options(&self) -> &Options {
        &self.0
    }

    /// Every finding; what nothing read is a warning.
    pub fn findings(&self) -> Vec<Problem> {
        let mut all = self.0.problems();
        all.extend(self.0.unread().into_iter().map(|u| Problem {
            fatal: false,
            text: u.to_string(),
        }));
        all
    }

    /// The findings that refuse the start.
    pub fn errors(&self) -> Vec<String> {
        self.0
            .problems()
            .into_iter()
            .filter(|p| p.fatal)
            .map(|p| p.text)
            .collect()
    }

    /// One log line per finding.
    pub fn log(&self) {
        for finding in self.findings() {
            if finding.fatal {
                tracing::error!("{finding}");
            } else {
                tracing::warn!("{finding}");
            }
        }
    }
}

impl std::fmt::Debug for ConfigReport {
    /// Without the options: they hold keys and passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfigReport")
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
        let (sections, file) = match path {
            Some(path) => {
                let name = path.display().to_string();
                let ini = ini::Ini::load_from_file_opt(path, RAW).map_err(|source| {
                    ConfigError::Read {
                        path: name.clone(),
                        source,
                    }
                })?;
                let lines = std::fs::read_to_string(path)
                    .map(|text| line_index(&text))
                    .unwrap_or_default();
                let path = Some(path.to_owned());
                (
                    sections_of(&ini),
                    Some(Arc::new(SourceFile { name, path, lines })),
                )
            }
            None => (HashMap::new(), None),
        };
        let env = std::env::vars()
            .filter(|(k, _)| k.starts_with("GMSHUB__"))
            .collect();
        Ok(Self {
            sections,
            env,
            file,
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
            file: Some(Arc::new(SourceFile {
                name: "the configuration".into(),
                path: None,
                lines: line_index(text),
            })),
            read: Arc::default(),
        })
    }

    /// The same file and environment read again (SIGHUP); `None` for
    /// options that came from no file.
    pub fn reread(&self) -> Option<Result<Options, ConfigError>> {
        let path = self.file.as_ref()?.path.as_deref()?;
        Some(Options::load(Some(path)))
    }

    /// The file the options came from, if any.
    pub fn file_name(&self) -> Option<&str> {
        self.file.as_ref().map(|f| f.name.as_str())
    }

    /// The options whose value differs between `self` and `other` (set in
    /// one only, or to another value), by section and option; names only.
    pub fn changed(&self, other: &Options) -> BTreeSet<(String, String)> {
        let pairs = |o: &Options| -> BTreeMap<(String, String), String> {
            o.sections
                .iter()
                .flat_map(|(s, options)| {
                    options
                        .iter()
                        .map(move |(k, v)| ((s.clone(), k.clone()), v.clone()))
                })
                .collect()
        };
        let (mine, theirs) = (pairs(self), pairs(other));
        let mut out: BTreeSet<(String, String)> = mine
            .iter()
            .filter(|(k, v)| theirs.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .collect();
        out.extend(theirs.keys().filter(|k| !mine.contains_key(*k)).cloned());
        out
    }

    /// Where the value of an option was written, for a message:
    /// ` (FILE line N)` or ` (environment VARIABLE)`.
    fn origin(&self, section: &str, option: &str) -> String {
        let key = env_key(section, option);
        if self.env.contains_key(&key) {
            return format!(" (environment {key})");
        }
        self.file
            .as_ref()
            .and_then(|f| {
                let line = f.lines.get(&(section.to_owned(), option.to_owned()))?;
                Some(format!(" ({} line {line})", f.name))
            })
            .unwrap_or_default()
    }

    /// Records a problem with the value of `section`/`option` (once).
    fn problem(&self, fatal: bool, section: &str, option: &str, value: &str, what: &str) {
        let text = format!(
            "[{section}] {option} = {value}{}: {what}",
            self.origin(section, option)
        );
        self.report(fatal, text);
    }

    /// Records a problem a reader found that is not one value's (a provider
    /// that cannot start, say), once.
    pub fn report(&self, fatal: bool, text: String) {
        let mut read = self.read.lock();
        if !read.problems.iter().any(|p| p.text == text) {
            read.problems.push(Problem { fatal, text });
        }
    }

    /// What reading has found wrong so far.
    pub fn problems(&self) -> Vec<Problem> {
        self.read.lock().problems.clone()
    }

    /// Every option read so far, with its default as text when it has a
    /// literal one, by section and option.
    pub fn defaults(&self) -> BTreeMap<(String, String), Option<String>> {
        self.read.lock().options.clone()
    }

    fn record(&self, section: &str, option: &str, default: Option<String>) {
        let mut read = self.read.lock();
        let entry = read
            .options
            .entry((section.to_owned(), option.to_owned()))
            .or_default();
        if entry.is_none() {
            *entry = default;
        }
    }

    /// The raw value of an option: the environment wins over the file.
    pub fn get(&self, section: &str, option: &str) -> Option<&str> {
        self.record(section, option, None);
        self.raw(section, option)
    }

    fn raw(&self, section: &str, option: &str) -> Option<&str> {
        self.env
            .get(&env_key(section, option))
            .or_else(|| self.sections.get(section)?.get(option))
            .map(|v| v.trim())
    }

    /// An option parsed as `T`, or `default` (with a warning) when it is
    /// absent or unreadable.
    pub fn value<T: FromStr + Display>(&self, section: &str, option: &str, default: T) -> T {
        self.record(section, option, Some(default.to_string()));
        match self.raw(section, option) {
            None | Some("") => default,
            Some(text) => text.parse().unwrap_or_else(|_| {
                let what = format!("not {}; using the default {default}", expected::<T>());
                self.problem(false, section, option, text, &what);
                default
            }),
        }
    }

    /// A number within `min..=max`, or `default` with a warning saying the
    /// range when it is out of it (or not a number).
    pub fn ranged<T: FromStr + Display + PartialOrd + Copy>(
        &self,
        section: &str,
        option: &str,
        default: T,
        min: T,
        max: T,
    ) -> T {
        self.bounded(section, option, default, min, Some(max))
    }

    /// A number of at least `min`, or `default` with a warning.
    pub fn at_least<T: FromStr + Display + PartialOrd + Copy>(
        &self,
        section: &str,
        option: &str,
        default: T,
        min: T,
    ) -> T {
        self.bounded(section, option, default, min, None)
    }

    fn bounded<T: FromStr + Display + PartialOrd + Copy>(
        &self,
        section: &str,
        option: &str,
        default: T,
        min: T,
        max: Option<T>,
    ) -> T {
        let value = self.value(section, option, default);
        if value < min || max.is_some_and(|max| value > max) {
            let range = match max {
                Some(max) => format!("{min} to {max}"),
                None => format!("at least {min}"),
            };
            let what = format!("out of range ({range}); using the default {default}");
            self.problem(false, section, option, &value.to_string(), &what);
            return default;
        }
        value
    }

    /// One of a fixed set of values (by name, case aside), or `default`
    /// when the option is not set. A name outside the set is an error that
    /// refuses the start (see [`problems`](Self::problems)).
    pub fn choice<T: Copy>(
        &self,
        section: &str,
        option: &str,
        choices: &[(&str, T)],
        default: &str,
    ) -> T {
        self.record(section, option, Some(default.to_owned()));
        let named = |name: &str| {
            choices
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        };
        let fallback = named(default).expect("the default is one of the choices");
        match self.raw(section, option) {
            None | Some("") => fallback,
            Some(text) => named(text).unwrap_or_else(|| {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                let what = format!("not one of {}", names.join(", "));
                self.problem(true, section, option, text, &what);
                fallback
            }),
        }
    }

    /// A text option, or `default` when it is absent or empty.
    pub fn text<'a>(&'a self, section: &str, option: &str, default: &'a str) -> &'a str {
        self.record(section, option, Some(default.to_owned()));
        self.raw(section, option)
            .filter(|v| !v.is_empty())
            .unwrap_or(default)
    }

    /// A boolean option; GMS writes them `true`/`false`, some exports `1`/`0`.
    pub fn flag(&self, section: &str, option: &str, default: bool) -> bool {
        self.record(section, option, Some(default.to_string()));
        match self
            .raw(section, option)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("") => default,
            Some("true" | "1" | "yes" | "on") => true,
            Some("false" | "0" | "no" | "off") => false,
            Some(other) => {
                let what = format!("not true or false; using the default {default}");
                self.problem(false, section, option, other, &what);
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
            .keys()
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
                    .keys()
                    .filter(|(s, _)| s == section)
                    .map(|(_, o)| o.as_str())
            };
            let mut options: Vec<&String> = self.sections[section].keys().collect();
            options.sort();
            for option in options {
                if !read
                    .options
                    .contains_key(&(section.clone(), option.clone()))
                {
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
