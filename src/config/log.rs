//! Logging as configured: `[log]` (level, format, where to, rotation, the
//! access log, GMS's component switches, the switch that logs request
//! parameters) and GMS's log hygiene for user data: the `XXX` / `MMM`
//! parameter-name rules and the `[log-filter]` / `[log-filter-data]`
//! filters ([`LogFilters`]), which turn key-value pairs into what a log may
//! show.
//!
//! `verbose` takes the Genesys level names: `none`, `standard` (warnings and
//! errors), `interaction` and `trace` (information), `debug` and `all`.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::PathBuf;

use super::Options;

/// Where log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout,
    Stderr,
    /// Files in `dir` named `prefix` plus the rotation's date suffix.
    File {
        dir: PathBuf,
        prefix: String,
    },
}

/// How often a log file is started afresh (`[log] segment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    Hour,
    Day,
    Never,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    /// The `tracing` filter `verbose` and the component switches make
    /// (`RUST_LOG`, when set, wins).
    pub filter: String,
    /// `[log] format`: `text` (default) or `json`.
    pub json: bool,
    /// `[log] all`: `stdout` (default), `stderr` or a file path.
    pub output: Output,
    /// `[log] segment`: `day` (default), `hour` or `false`.
    pub segment: Segment,
    /// `[log] expire`: how many files are kept (default 10; 0 keeps all).
    pub expire: usize,
    /// `[log] access-log`: one line per request (default false).
    pub access_log: bool,
    /// `[log] request-parameters`: requests' parameters and user data are
    /// logged at debug level, through the filters (default false).
    pub parameters: bool,
    pub filters: LogFilters,
}

/// GMS's extra component logs (`[log] ChatService = true`, ...): each turns
/// on debug lines for the part of gmshub that does that work.
const COMPONENTS: [(&str, &str); 6] = [
    ("ChatService", "channels::chat=debug,gmshub::comet=debug"),
    ("ClusterService", "gmshub::cluster=debug"),
    (
        "DataDepotService",
        "channels::storage=debug,gmshub::store=debug",
    ),
    ("DistributedJobExecutor", "channels::callback=debug"),
    ("DistributedJobQueue", "push=debug"),
    ("SharedService", "channels::service=debug"),
];

impl LogSettings {
    pub fn from_options(o: &Options) -> Self {
        let level = o.choice(
            "log",
            "verbose",
            &[
                ("none", "off"),
                ("standard", "warn"),
                ("interaction", "info"),
                ("trace", "info"),
                ("debug", "debug"),
                ("all", "debug"),
            ],
            "trace",
        );
        let mut filter = level.to_owned();
        for (option, directive) in COMPONENTS {
            if o.flag("log", option, false) {
                filter.push(',');
                filter.push_str(directive);
            }
        }
        if o.flag("callback", "log-background-activity", false) {
            filter.push_str(",channels::callback=debug");
        }
        let output = match o.text("log", "all", "stdout") {
            "stdout" => Output::Stdout,
            "stderr" => Output::Stderr,
            path => {
                let path = PathBuf::from(path);
                let prefix = path
                    .file_name()
                    .map_or("gmshub.log".into(), |n| n.to_string_lossy().into_owned());
                let dir = path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .map_or(PathBuf::from("."), PathBuf::from);
                Output::File { dir, prefix }
            }
        };
        let segment = o.choice(
            "log",
            "segment",
            &[
                ("day", Segment::Day),
                ("hour", Segment::Hour),
                ("false", Segment::Never),
            ],
            "day",
        );
        Self {
            filter,
            json: o.choice("log", "format", &[("text", false), ("json", true)], "text"),
            output,
            segment,
            expire: o.value("log", "expire", 10),
            access_log: o.flag("log", "access-log", false),
            parameters: o.flag("log", "request-parameters", false),
            filters: LogFilters::from_options(o),
        }
    }
}

/// One filter of `[log-filter-data]` (GMS's table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Copy,
    /// The value is not shown (`[output suppressed]`).
    Hide,
    HideFirst(usize),
    HideLast(usize),
    UnhideFirst(usize),
    UnhideLast(usize),
    /// The pair is left out.
    Skip,
    Tag {
        prefix: String,
        postfix: String,
    },
}

impl Filter {
    /// Reads a filter as GMS writes it; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Filter> {
        let text = text.trim();
        let count = |rest: &str| rest.trim().parse::<usize>().ok();
        if let Some((name, n)) = text.split_once(',') {
            let n = count(n);
            return match name.trim() {
                "hide-first" => n.map(Filter::HideFirst),
                "hide-last" => n.map(Filter::HideLast),
                "unhide-first" => n.map(Filter::UnhideFirst),
                "unhide-last" => n.map(Filter::UnhideLast),
                _ => Self::tag(text),
            };
        }
        match text {
            "copy" => Some(Filter::Copy),
            "hide" => Some(Filter::Hide),
            "skip" => Some(Filter::Skip),
            _ => Self::tag(text),
        }
    }

    /// `tag()`, `tag(*)` and `tag(,)` (GMS's `<#` `#>`), or
    /// `tag(PREFIX,POSTFIX)`.
    fn tag(text: &str) -> Option<Filter> {
        let inner = text.strip_prefix("tag(")?.strip_suffix(')')?;
        let (prefix, postfix) = match inner.split_once(',') {
            Some((p, q)) if !(p.is_empty() && q.is_empty()) => (p, q),
            None if !inner.is_empty() && inner != "*" => return None,
            _ => ("<#", "#>"),
        };
        Some(Filter::Tag {
            prefix: prefix.to_owned(),
            postfix: postfix.to_owned(),
        })
    }

    /// The value as this filter shows it; `None` when the pair is skipped.
    /// Masks write one `*` per character (not per byte).
    pub fn apply(&self, value: &str) -> Option<Shown> {
        let chars: Vec<char> = value.chars().collect();
        let len = chars.len();
        let masked = |keep: std::ops::Range<usize>| -> String {
            chars
                .iter()
                .enumerate()
                .map(|(i, c)| if keep.contains(&i) { *c } else { '*' })
                .collect()
        };
        Some(Shown::Value(match self {
            Filter::Copy => value.to_owned(),
            Filter::Hide => return Some(Shown::Suppressed),
            Filter::Skip => return None,
            Filter::HideFirst(n) => masked(n.min(&len).to_owned()..len),
            Filter::HideLast(n) => masked(0..len - n.min(&len)),
            Filter::UnhideFirst(n) if *n > len => value.to_owned(),
            Filter::UnhideFirst(n) => masked(0..*n),
            Filter::UnhideLast(n) if *n > len => value.to_owned(),
            Filter::UnhideLast(n) => masked(len - n..len),
            Filter::Tag { prefix, postfix } => format!("{prefix}{value}{postfix}"),
        }))
    }
}

/// What a log shows of a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    Value(String),
    Suppressed,
}

/// `[log-filter] default-filter-type` and `[log-filter-data]`, with the
/// rules that need no configuration: passwords are never shown, a name
/// starting with `XXX` is left out and one starting with `MMM` is shown as
/// `MMM`.
#[derive(Debug, Clone, Default)]
pub struct LogFilters {
    default: Option<Filter>,
    keys: HashMap<String, Option<Filter>>,
}

impl LogFilters {
    /// The filters `o` sets; what is not a filter is reported and hides
    /// its values.
    pub fn from_options(o: &Options) -> Self {
        let read = |section: &str, option: &str, text: &str| {
            let filter = Filter::parse(text);
            if filter.is_none() {
                o.report(false, format!(
                    "[{section}] {option}: {text:?} is not a filter (copy, hide, hide-first,N, \
                     hide-last,N, unhide-first,N, unhide-last,N, skip, tag(...)): the value is hidden"
                ));
            }
            Some(filter.unwrap_or(Filter::Hide))
        };
        let default = o
            .get("log-filter", "default-filter-type")
            .filter(|t| !t.is_empty())
            .and_then(|t| read("log-filter", "default-filter-type", t));
        let keys = o
            .section("log-filter-data")
            .map(|section| {
                section
                    .iter()
                    .map(|(key, text)| {
                        let text = text.trim();
                        // Empty: no extra processing for this key.
                        let filter = match text {
                            "" => None,
                            _ => read("log-filter-data", key, text),
                        };
                        (key.clone(), filter)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { default, keys }
    }

    /// How the pair `key = value` is shown; `None` when it is left out.
    pub fn show(&self, key: &str, value: &str) -> Option<Shown> {
        if key.starts_with("XXX") {
            return None;
        }
        if key.starts_with("MMM") {
            return Some(Shown::Value("MMM".into()));
        }
        if key.to_ascii_lowercase().contains("password") {
            return Some(Shown::Suppressed);
        }
        let filter = match self.keys.get(key) {
            Some(own) => own.as_ref(),
            None => self.default.as_ref(),
        };
        match filter {
            Some(filter) => filter.apply(value),
            None => Some(Shown::Value(value.to_owned())),
        }
    }

    /// Pairs as GMS's logs list them: `'key' [str] = "value"` or
    /// `'key' [output suppressed]`, one per line, skipped pairs left out.
    pub fn kv_list<'a>(&self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
        let mut out = String::new();
        for (key, value) in pairs {
            match self.show(key, value) {
                None => {}
                Some(Shown::Suppressed) => {
                    let _ = writeln!(out, "'{key}' [output suppressed]");
                }
                Some(Shown::Value(v)) => {
                    let _ = writeln!(out, "'{key}' [str] = \"{}\"", v.escape_debug());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(filter: &str, value: &str) -> Option<String> {
        match Filter::parse(filter).expect(filter).apply(value)? {
            Shown::Value(v) => Some(v),
            Shown::Suppressed => Some("[output suppressed]".into()),
        }
    }

    #[test]
    fn every_filter_of_gms_table() {
        let s = |f, v| shown(f, v).unwrap();
        assert_eq!(s("copy", "Joe"), "Joe");
        assert_eq!(s("hide", "Joe"), "[output suppressed]");
        assert_eq!(shown("skip", "Joe"), None);
        // hide-first,n / hide-last,n: n = 0, inside, = length, > length.
        assert_eq!(s("hide-first,0", "abcd"), "abcd");
        assert_eq!(s("hide-first,1", "abcd"), "*bcd");
        assert_eq!(s("hide-first,4", "abcd"), "****");
        assert_eq!(s("hide-first,9", "abcd"), "****");
        assert_eq!(s("hide-last,0", "abcd"), "abcd");
        assert_eq!(s("hide-last,2", "abcd"), "ab**");
        assert_eq!(s("hide-last,4", "abcd"), "****");
        assert_eq!(s("hide-last,9", "abcd"), "****");
        // unhide-first,n / unhide-last,n: shown unmasked when n > length.
        assert_eq!(s("unhide-first,0", "abcd"), "****");
        assert_eq!(s("unhide-first,1", "abcd"), "a***");
        assert_eq!(s("unhide-first,4", "abcd"), "abcd");
        assert_eq!(s("unhide-first,9", "abcd"), "abcd");
        assert_eq!(s("unhide-last,0", "abcd"), "****");
        assert_eq!(s("unhide-last,3", "abcd"), "*bcd");
        assert_eq!(s("unhide-last,4", "abcd"), "abcd");
        assert_eq!(s("unhide-last,9", "abcd"), "abcd");
        // The tag forms.
        for default in ["tag()", "tag(*)", "tag(,)"] {
            assert_eq!(s(default, "x"), "<#x#>", "{default}");
        }
        assert_eq!(s("tag(!!!,!!!)", "x"), "!!!x!!!");
        // One asterisk per character, whatever its bytes.
        assert_eq!(s("hide-first,2", "Zoë😀!"), "**ë😀!");
        assert_eq!(s("unhide-last,2", "Zoë😀!"), "***😀!");
        for bad in ["hide-first", "hide-first,x", "tag(", "mask"] {
            assert_eq!(Filter::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_guides_worked_example() {
        let o = Options::from_ini(
            "[log-filter-data]\nchatSessionId=hide\nemail=unhide-last,10\nfirstName=hide\n\
             lastName=hide-first,1\nsubject=copy\nsubscriptionID=skip\n",
            &[],
        )
        .unwrap();
        let filters = LogFilters::from_options(&o);
        let logged = filters.kv_list([
            ("lastName", "Doe"),
            ("firstName", "John"),
            ("email", "joe.doe@gmail.com"),
            ("subject", "Question about your product"),
            ("subscriptionID", "0123"),
        ]);
        assert_eq!(
            logged,
            "'lastName' [str] = \"*oe\"\n\
             'firstName' [output suppressed]\n\
             'email' [str] = \"*******@gmail.com\"\n\
             'subject' [str] = \"Question about your product\"\n"
        );
    }

    #[test]
    fn built_in_rules_default_filter_and_empty_entries() {
        let o = Options::from_ini(
            "[log-filter]\ndefault-filter-type=hide-last,2\n\
             [log-filter-data]\nsubject=\nXXX_secret=copy\n",
            &[],
        )
        .unwrap();
        let filters = LogFilters::from_options(&o);
        let logged = filters.kv_list([
            ("XXX_FilterParam", "gone"),
            ("MMM_MaskParam", "masked"),
            ("password", "s3cret"),
            ("subject", "kept"),
            ("phone", "5551234"),
            ("XXX_secret", "still gone"),
        ]);
        assert_eq!(
            logged,
            "'MMM_MaskParam' [str] = \"MMM\"\n\
             'password' [output suppressed]\n\
             'subject' [str] = \"kept\"\n\
             'phone' [str] = \"55512**\"\n"
        );
        // Out of the box, everything is visible.
        let plain = LogFilters::default();
        assert_eq!(
            plain.kv_list([("phone", "5551234")]),
            "'phone' [str] = \"5551234\"\n"
        );
    }

    #[test]
    fn verbose_segment_and_file_output() {
        let o = Options::from_ini(
            "[log]\nverbose=standard\nall=/var/log/gmshub/hub.log\nsegment=hour\nexpire=3\n\
             ChatService=true\nformat=json\n",
            &[],
        )
        .unwrap();
        let log = LogSettings::from_options(&o);
        assert_eq!(log.filter, "warn,channels::chat=debug,gmshub::comet=debug");
        assert_eq!(
            log.output,
            Output::File {
                dir: "/var/log/gmshub".into(),
                prefix: "hub.log".into()
            }
        );
        assert_eq!(
            (log.segment, log.expire, log.json),
            (Segment::Hour, 3, true)
        );
        let none = LogSettings::from_options(&Options::default());
        assert_eq!(
            (none.filter.as_str(), none.output, none.access_log),
            ("info", Output::Stdout, false)
        );
    }
}
