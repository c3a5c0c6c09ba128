//! Runs the MongoDB wire-protocol replay server from the integration tests as a
//! standalone process, for the demo stack and for poking at the exporter by hand:
//!
//! ```text
//! cargo run --example mongo_replay -- --scenario primary --listen 127.0.0.1:27017
//! ```
//!
//! Prints the connection URI on stdout, then serves until Ctrl-C or SIGTERM.
//! `--fault` starts with a fault switched on (`delay:<ms>`, `unauthorized`,
//! `drop-mid-reply`, `malformed-bson`, `refuse-handshake`). Scenarios and the
//! synthesized data are documented in `tests/it/support/mongo_replay.rs`.

#[path = "../tests/it/support/mongo_replay.rs"]
#[allow(dead_code)]
mod mongo_replay;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use mongo_replay::{Fault, ReplayServer, Scenario};

const USAGE: &str = "usage: mongo_replay [--scenario standalone|primary|secondary|arbiter|mongos|no-primary] \
[--listen 127.0.0.1:27017] [--fault delay:<ms>|unauthorized|drop-mid-reply|malformed-bson|refuse-handshake]";

struct Args {
    scenario: Scenario,
    listen: SocketAddr,
    fault: Fault,
}

fn parse_fault(text: &str) -> Result<Fault, String> {
    match text {
        "none" => Ok(Fault::None),
        "unauthorized" => Ok(Fault::unauthorized()),
        "drop-mid-reply" => Ok(Fault::DropMidReply),
        "malformed-bson" => Ok(Fault::MalformedBson),
        "refuse-handshake" => Ok(Fault::RefuseHandshake),
        other => match other.strip_prefix("delay:").map(str::parse::<u64>) {
            Some(Ok(ms)) => Ok(Fault::Delay(Duration::from_millis(ms))),
            _ => Err(format!("unknown fault {other:?}")),
        },
    }
}

fn parse_args() -> Result<Args, String> {
    let mut args =
        Args { scenario: Scenario::Primary, listen: SocketAddr::from(([127, 0, 0, 1], 27017)), fault: Fault::None };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (flag.clone(), None),
        };
        if name == "--help" || name == "-h" {
            return Err(String::new());
        }
        let value = match inline.or_else(|| argv.next()) {
            Some(value) => value,
            None => return Err(format!("{name} needs a value")),
        };
        match name.as_str() {
            "--scenario" => args.scenario = value.parse()?,
            "--listen" => args.listen = value.parse().map_err(|e| format!("--listen {value:?}: {e}"))?,
            "--fault" => args.fault = parse_fault(&value)?,
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    Ok(args)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("mongo_replay: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut server = match ReplayServer::start_on(args.scenario, args.listen) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("mongo_replay: {e}");
            return ExitCode::FAILURE;
        }
    };
    server.set_fault(args.fault.clone());
    // The demo's database follows the DBA guide: required indexes present, TTL monitor running.
    server.serve_healthy_app();
    println!("{}", server.uri());
    eprintln!(
        "mongo_replay: scenario {} on {} (fault: {:?}); Ctrl-C to stop",
        args.scenario,
        server.addr(),
        args.fault
    );

    // The server runs on its own threads; the runtime only waits for a signal.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mongo_replay: starting the signal runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(shutdown_signal());
    server.stop();
    eprintln!("mongo_replay: stopped after {} connections", server.connections_accepted());
    ExitCode::SUCCESS
}
