//! The binary edge: parse flags, validate the configuration, serve until a
//! signal. Errors reach the user once, printed with their whole cause chain.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;

use tenderly_exporter::cli::{Cli, Command};
use tenderly_exporter::config::{Config, ProcessEnv};
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
    if cli.check_config {
        if let Some(path) = &config.web.web_config_file {
            tenderly_exporter::web_config::WebSecurity::load(path).context("invalid --web.config.file")?;
        }
        println!("configuration OK: {} target(s)", config.targets.len());
        for t in &config.targets {
            let role = if t.default { "default (/metrics)" } else { "probe only" };
            println!("  {} ({}) {} [{}]", t.name, t.kind().as_str(), t.display_address(), role);
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

async fn serve(config: Config, cli: Cli) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.web.listen_address)
        .await
        .with_context(|| format!("--web.listen-address {}: cannot listen", config.web.listen_address))?;
    let local = listener.local_addr().context("reading the listen address")?;
    let scraper = scrape::Scraper::new(&config);
    for (name, kind, address, default) in scraper.target_list() {
        tracing::info!(target_name = %name, kind, address = %address, default, "target configured");
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
