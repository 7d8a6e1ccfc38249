//! gmshub's command line: read the configuration, then run the hub (or print
//! the store schema). Everything else is the `gmshub` library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use gmshub::app::{self, Signals};
use gmshub::config::{LogSettings, Options, Settings};

/// mimalloc rather than glibc's malloc: under many threads glibc's arenas
/// are locked on every allocation of a request's short-lived futures and
/// buffers (a profile of long-polling put a quarter of the server's time in
/// malloc and its lock).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A real-time messaging hub speaking the public APIs of Genesys Mobile
/// Services: Bayeux/CometD at /genesys/cometd.
///
/// Options are read from the INI file given with --config, using GMS section
/// and option names; any option can be overridden by an environment variable
/// GMSHUB__<SECTION>__<OPTION> (upper case, other characters as '_').
/// Logging follows [log] (RUST_LOG, when set, wins).
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Configuration file (INI: [section] and option = value lines).
    #[arg(long, short, env = "GMSHUB_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Address to listen on; replaces [server] listen (default 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<SocketAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Print the schema a store needs (CQL for cassandra), or apply it.
    Schema {
        #[arg(value_enum)]
        store: SchemaStore,
        /// Run the statements on the cluster named by [cassandra] nodes.
        #[arg(long)]
        apply: bool,
    },
    /// Print an argon2id hash of the password read from standard input (one
    /// line), for any `password` option: the configuration then need not
    /// hold the password itself.
    HashPassword,
    /// Read a configuration file as a start would, without starting: print
    /// what is wrong with it (errors refuse a start, warnings do not) and
    /// exit 1 when there is an error.
    CheckConfig {
        /// The INI file (environment overrides apply, as at a start).
        file: PathBuf,
    },
    /// Print configuration references.
    Config {
        #[command(subcommand)]
        what: ConfigCommand,
    },
}

#[derive(clap::Subcommand, Debug)]
enum ConfigCommand {
    /// Every option with its default, as an annotated INI file.
    Defaults,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum SchemaStore {
    Cassandra,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("gmshub: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    // Installed first, so a signal that arrives as soon as the port answers
    // still shuts down gracefully instead of killing the process.
    if let Some(Command::HashPassword) = cli.command {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        let password = line.trim_end_matches(['\r', '\n']);
        if password.is_empty() {
            return Err("no password on standard input".into());
        }
        println!("{}", channels::password::Password::hash(password));
        return Ok(());
    }
    match &cli.command {
        Some(Command::CheckConfig { file }) => return check_config(file),
        Some(Command::Config {
            what: ConfigCommand::Defaults,
        }) => {
            print!("{}", app::check::defaults_ini());
            return Ok(());
        }
        _ => {}
    }
    let signals = Signals::install()?;
    let options = Options::load(cli.config.as_deref())?;
    // Before anything else reads the options, so that what they report is
    // logged where the operator asked.
    let _log = gmshub::observe::log::init(&LogSettings::from_options(&options))?;
    if let Some(Command::Schema {
        store: SchemaStore::Cassandra,
        apply,
    }) = cli.command
    {
        return Ok(app::cassandra_schema(&options, apply).await?);
    }
    let mut settings = Settings::from_options(&options);
    if let Some(listen) = cli.listen {
        settings.listen = Ok(vec![listen]);
    }
    Ok(app::run(settings, signals.recv()).await?)
}

/// `check-config FILE`: one line per finding, `error:` or `warning:`;
/// fails when there is an error.
fn check_config(file: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let options = Options::load(Some(file))?;
    let findings = app::check::check(&options);
    for finding in &findings {
        let kind = if finding.fatal { "error" } else { "warning" };
        println!("{kind}: {finding}");
    }
    let errors = findings.iter().filter(|f| f.fatal).count();
    if errors > 0 {
        return Err(format!("{} has {errors} error(s)", file.display()).into());
    }
    println!("{}: no errors", file.display());
    Ok(())
}
