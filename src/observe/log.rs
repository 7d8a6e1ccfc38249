//! The process's log, set up from `[log]`: the level (`RUST_LOG`, when
//! set, wins), text or JSON lines, and standard output, standard error or
//! files rotated by the hour or the day with the newest `expire` kept
//! (tracing-appender; lines are written off the request threads, and the
//! returned guard flushes what is left when the process ends); and the
//! log of request parameters (`[log] request-parameters`), through GMS's
//! filters.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use axum::extract::{ConnectInfo, MatchedPath};
use axum::http::Method;
use parking_lot::RwLock;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer};

use crate::config::log::{LogFilters, LogSettings, Output, Segment};

/// Keeps the file writer's thread until the process ends (dropped, it
/// flushes what is queued).
pub struct LogGuard {
    _writer: Option<WorkerGuard>,
}

/// Installs the log `settings` describe (what was wrong with them is the
/// configuration report's). Fails when the log directory cannot be used.
pub fn init(settings: &LogSettings) -> Result<LogGuard, std::io::Error> {
    // An empty RUST_LOG counts as none.
    let filter = match std::env::var("RUST_LOG") {
        Ok(asked) if from_environment() => EnvFilter::new(asked),
        _ => EnvFilter::new(&settings.filter),
    };
    let (writer, guard, ansi) = match &settings.output {
        Output::Stdout => (
            BoxMakeWriter::new(std::io::stdout),
            None,
            std::io::IsTerminal::is_terminal(&std::io::stdout()),
        ),
        Output::Stderr => (BoxMakeWriter::new(std::io::stderr), None, false),
        Output::File { dir, prefix } => {
            let rotation = match settings.segment {
                Segment::Hour => Rotation::HOURLY,
                Segment::Day => Rotation::DAILY,
                Segment::Never => Rotation::NEVER,
            };
            let mut files = RollingFileAppender::builder()
                .rotation(rotation)
                .filename_prefix(prefix);
            if settings.expire > 0 {
                files = files.max_log_files(settings.expire);
            }
            let files = files.build(dir).map_err(|e| {
                std::io::Error::other(format!("log directory {}: {e}", dir.display()))
            })?;
            let (writer, guard) = tracing_appender::non_blocking(files);
            (BoxMakeWriter::new(writer), Some(guard), false)
        }
    };
    let (filter, handle) = reload::Layer::new(filter);
    let lines = tracing_subscriber::fmt::layer().with_writer(writer);
    let lines = if settings.json {
        lines.json().boxed()
    } else {
        lines.with_ansi(ansi).boxed()
    };
    // A second set-up (a test building several hubs) keeps the first.
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .try_init();
    if installed.is_ok() && !from_environment() {
        let _ = LEVEL.set(Box::new(move |filter: &str| {
            handle
                .reload(EnvFilter::new(filter))
                .map_err(|e| e.to_string())
        }));
    }
    Ok(LogGuard { _writer: guard })
}

/// Whether `RUST_LOG` sets the level (then `[log]` does not).
fn from_environment() -> bool {
    std::env::var("RUST_LOG").is_ok_and(|v| !v.trim().is_empty())
}

type SetLevel = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Replaces the log's filter, once `init` has set it from `[log]`.
static LEVEL: OnceLock<SetLevel> = OnceLock::new();

/// Puts `filter` (`LogSettings::filter`) in place; false when the level
/// is not `[log]`'s to set (`RUST_LOG`, or no log set up here).
pub fn set_filter(filter: &str) -> bool {
    LEVEL.get().is_some_and(|set| set(filter).is_ok())
}

/// The filters request parameters pass before they are logged; `None`
/// while `[log] request-parameters` is off. Global, as the log is.
static PARAMETERS: RwLock<Option<Arc<LogFilters>>> = RwLock::new(None);

/// Turns the parameter log on (with these filters) or off.
pub fn log_parameters(filters: Option<LogFilters>) {
    *PARAMETERS.write() = filters.map(Arc::new);
}

/// Where a request's parameters came from, taken before its body is read.
pub struct Asked {
    method: Method,
    route: Option<MatchedPath>,
    client: Option<IpAddr>,
}

impl Asked {
    pub fn of<B>(request: &axum::http::Request<B>) -> Self {
        Self {
            method: request.method().clone(),
            route: request.extensions().get::<MatchedPath>().cloned(),
            client: request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        }
    }

    /// Logs `pairs` at debug level, through the filters, in GMS's shape
    /// (the route template stands for the URI, whose ids are capabilities).
    pub fn parameters<'a>(&self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
        if !tracing::enabled!(target: "gmshub::parameters", tracing::Level::DEBUG) {
            return;
        }
        let Some(filters) = PARAMETERS.read().clone() else {
            return;
        };
        tracing::debug!(
            target: "gmshub::parameters",
            "({}) Client IP Address: {}, URI:{}\nParams: KVList:\n{}",
            self.method,
            self.client.map_or("-".into(), |c| c.to_string()),
            self.route.as_ref().map_or("-", MatchedPath::as_str),
            filters.kv_list(pairs).trim_end(),
        );
    }
}
