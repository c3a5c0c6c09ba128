//! The binary edge: parse flags, validate the configuration, serve until a
//! signal. Errors reach the user once, printed with their whole cause chain.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;

use tenderly_exporter::cli::{Cli, Command};
use tenderly_exporter::config::{Config, ProcessEnv, StructureOnly};
use tenderly_exporter::{logging, scrape, server};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tenderly-exporter: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.check_config || cli.check_config_structure {
        return check_config(&cli);
    }
    let config = Config::from_cli(&cli, &ProcessEnv).context("invalid configuration")?;
    if cli.command == Some(Command::Doctor) {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")?;
        let (report, ok) = runtime.block_on(tenderly_exporter::doctor::run(&config));
        print!("{report}");
        if !ok {
            anyhow::bail!("doctor found problems (see above)");
        }
        return Ok(());
    }
    logging::init(config.log_level, config.log_format);
    // One thread: the work is I/O-bound and each scrape's CPU is well under a
    // millisecond, so a second worker only adds cross-thread wake-ups (futex and
    // context switches were the largest cost per scrape in `perf`). Blocking
    // work (DNS) still goes to tokio's blocking pool.
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(serve(config, cli))
}

/// What to do when no target is configured (a warning at startup, an error for --check-config).
const NO_TARGETS: &str = "no targets configured: /metrics will only show the exporter's own metrics and every \
     /probe will answer 400; give --redis.addr, --mongodb.uri, or --config.file with a `targets:` list \
     (see examples/targets.yml)";

/// `--check-config` and `--check-config.structure`: validate, print the
/// targets, exit. The structural check reads no secret and lists each missing
/// one as a finding; zero targets is an error either way.
fn check_config(cli: &Cli) -> anyhow::Result<()> {
    let structure = StructureOnly::new(&ProcessEnv);
    let config =
        if cli.check_config_structure { Config::from_cli(cli, &structure) } else { Config::from_cli(cli, &ProcessEnv) }
            .context("invalid configuration")?;
    if let Some(path) = &config.web.web_config_file {
        // The web config names TLS key files (secrets): only the full check loads it.
        if !cli.check_config_structure {
            tenderly_exporter::web_config::WebSecurity::load(path).context("invalid --web.config.file")?;
        }
    }
    if config.targets.is_empty() {
        anyhow::bail!("{NO_TARGETS}");
    }
    let what = if cli.check_config_structure { "configuration structure OK" } else { "configuration OK" };
    println!("{what}: {} target(s)", config.targets.len());
    for t in &config.targets {
        let role = if t.default { "default (/metrics)" } else { "probe only" };
        println!("  {} ({}) {} [{}]", t.name, t.kind().as_str(), t.display_address(), role);
    }
    if cli.check_config_structure {
        let findings = structure.findings();
        if findings.is_empty() {
            println!("every secret and TLS file and every secret variable is present (none was read)");
        } else {
            println!("{} finding(s): install these before starting the exporter:", findings.len());
            for finding in findings {
                println!("  missing: {finding}");
            }
        }
    }
    Ok(())
}

async fn serve(config: Config, cli: Cli) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.web.listen_address)
        .await
        .with_context(|| format!("--web.listen-address {}: cannot listen", config.web.listen_address))?;
    let local = listener.local_addr().context("reading the listen address")?;
    let scraper = scrape::Scraper::new(&config);
    for (name, kind, address, default) in scraper.target_list() {
        tracing::info!(target_name = %name, kind, address = %address, default, "target configured");
    }
    if config.targets.is_empty() {
        tracing::warn!("{NO_TARGETS}");
    }
    // A reload (POST /-/reload, SIGHUP) builds the configuration as startup did.
    let source: server::ConfigSource =
        Arc::new(move || Config::from_cli(&cli, &ProcessEnv).map_err(|e| format!("{e:#}")));
    let state = Arc::new(
        server::AppState::new(config.web.clone(), scraper)
            .context("invalid --web.config.file")?
            .with_config_source(source),
    );
    tracing::info!(address = %local, version = tenderly_exporter::build_info::version(), "listening");
    server::serve(listener, state, shutdown_signal()).await.context("serving HTTP")?;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!(signal = "SIGINT", "shutting down"),
        _ = term => tracing::info!(signal = "SIGTERM", "shutting down"),
    }
}
