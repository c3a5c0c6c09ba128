//! The exporter's own load on a Redis server: how many commands one component
//! (the collector, the key scan, the posture check) sent, and how long it
//! waited for their replies.
//!
//! Redis counts every command in `INFO commandstats` and
//! `redis_commands_processed_total` whoever sent it, so an operator who wants
//! the application's traffic must subtract the exporter's. The count here
//! includes the connection handshake (`AUTH`/`HELLO`, `SELECT`) and matches what
//! the server's commandstats record for these connections. The time is
//! **client-side**: from sending a round trip to its last reply, network and
//! queueing included; Redis does not attribute server time to a client, so it
//! is an upper bound of the server time those commands cost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Commands sent and client-side round-trip time, since the process started.
#[derive(Debug, Default)]
pub struct CommandLoad {
    commands: AtomicU64,
    wait_nanos: AtomicU64,
}

impl CommandLoad {
    pub fn new() -> Self {
        CommandLoad::default()
    }

    /// Records one round trip of `commands` commands that waited `waited` for its replies.
    pub fn record(&self, commands: usize, waited: Duration) {
        self.commands.fetch_add(commands as u64, Ordering::Relaxed);
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.wait_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Commands sent so far.
    pub fn commands(&self) -> u64 {
        self.commands.load(Ordering::Relaxed)
    }

    /// Client-side seconds spent waiting for replies so far.
    pub fn round_trip_seconds(&self) -> f64 {
        self.wait_nanos.load(Ordering::Relaxed) as f64 / 1e9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_add_up() {
        let load = CommandLoad::new();
        load.record(3, Duration::from_millis(2));
        load.record(0, Duration::ZERO);
        load.record(1, Duration::from_millis(1));
        assert_eq!(load.commands(), 4);
        assert!((load.round_trip_seconds() - 0.003).abs() < 1e-9);
    }
}
