//! Tenderly application signals: the DBA guide's manual checks made
//! continuous. Redis key families (`keys`), Redis and MongoDB security posture
//! (`redis_posture`, `mongo_posture`), config-driven MongoDB query metrics and
//! audit-event counters (`queries`, `audit`), and backup freshness (`backups`).

pub mod audit;
pub mod backups;
pub mod drift;
pub mod indexes;
pub mod key_privileges;
pub mod keys;
pub mod mongo;
pub mod mongo_posture;
pub mod posture;
pub mod queries;
pub mod redis_posture;

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A reading refreshed at most once per `interval` (posture checks: their
/// answers change only with the server's configuration, and the Redis one
/// costs the server an error reply).
#[derive(Debug)]
pub struct Cached<T> {
    interval: Duration,
    slot: Mutex<Option<(Instant, T)>>,
}

impl<T: Clone> Cached<T> {
    pub fn new(interval: Duration) -> Self {
        Cached { interval, slot: Mutex::new(None) }
    }

    /// The cached reading if fresh, else the result of `refresh` (then cached).
    pub async fn get_or_refresh<F: Future<Output = T>>(&self, refresh: impl FnOnce() -> F) -> T {
        let cached = self.slot.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match cached {
            Some((at, value)) if at.elapsed() < self.interval => value,
            _ => {
                let value = refresh().await;
                *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), value.clone()));
                value
            }
        }
    }
}

/// How often posture checks run.
pub const POSTURE_INTERVAL: Duration = Duration::from_secs(300);
