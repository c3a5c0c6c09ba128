//! Oplog window: how far back in time the oplog of this node reaches, and how
//! full it is.
//!
//! The window (newest minus oldest entry) is the time a secondary may fall
//! behind, or be down, before it can no longer catch up from this node and
//! needs a full resync. The families here carry **no labels** on purpose: they
//! describe the scraped node (Prometheus adds `instance`/`job`), so
//! replication headroom can be computed against the `{set, member}` lag
//! series by ignoring those two labels:
//!
//! ```promql
//! mongodb_oplog_window_seconds
//!   - ignoring(set, member) group_right
//!     mongodb_replset_member_replication_lag_seconds
//! ```
//!
//! Times come from the entries' `ts` (the optime Timestamp, the same clock
//! replication lag is measured on); `wall` (a Date, 4.2+) is the fallback when
//! `ts` is missing or of the wrong type.

use mongodb::bson::{Bson, Document};

use super::bson_num::{date_or_timestamp_millis, f64_of};
use super::bson_num::{num, Num};
use crate::metrics::{BaseUnit, Desc, Exposition};

const FIRST: Desc = Desc::gauge(
    "mongodb_oplog_first_timestamp_seconds",
    "Unix time of the oldest entry in this node's oplog (local.oplog.rs ts).",
)
.unit(BaseUnit::Seconds);
const LAST: Desc = Desc::gauge(
    "mongodb_oplog_last_timestamp_seconds",
    "Unix time of the newest entry in this node's oplog (local.oplog.rs ts).",
)
.unit(BaseUnit::Seconds);
const WINDOW: Desc = Desc::gauge(
    "mongodb_oplog_window_seconds",
    "Time between the oldest and newest oplog entries: how long a secondary can fall behind this node and still catch up.",
)
.unit(BaseUnit::Seconds);
const SIZE: Desc = Desc::gauge(
    "mongodb_oplog_size_bytes",
    "Uncompressed size of the data in this node's oplog, from collStats of local.oplog.rs (size).",
)
.unit(BaseUnit::Bytes);
const MAX_SIZE: Desc = Desc::gauge(
    "mongodb_oplog_max_size_bytes",
    "Configured maximum size of this node's oplog, from collStats of local.oplog.rs (maxSize).",
)
.unit(BaseUnit::Bytes);

const ALL: [&Desc; 5] = [&FIRST, &LAST, &WINDOW, &SIZE, &MAX_SIZE];

/// Oplog bounds and size of one node. Every field is optional: an empty oplog
/// has no bounds, and collStats may be refused while the find succeeded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OplogWindow {
    /// Unix milliseconds of the oldest entry.
    pub first_millis: Option<i64>,
    /// Unix milliseconds of the newest entry.
    pub last_millis: Option<i64>,
    pub size_bytes: Option<Num>,
    pub max_size_bytes: Option<Num>,
}

impl OplogWindow {
    /// Newest minus oldest entry, never negative (a clock step between the two
    /// reads is not a negative window).
    pub fn window_secs(&self) -> Option<f64> {
        Some(self.last_millis?.saturating_sub(self.first_millis?).max(0) as f64 / 1000.0)
    }
}

/// From the first and last `local.oplog.rs` entries (projection `{ts: 1, wall: 1}`,
/// natural order ascending / descending) and `collStats` of `local.oplog.rs`
/// (`size`, `maxSize` at the top level, or under `storageStats` as the
/// `$collStats` aggregation returns them). `None` when nothing usable was read.
pub fn parse(first: Option<&Document>, last: Option<&Document>, coll_stats: Option<&Document>) -> Option<OplogWindow> {
    let mut window = OplogWindow {
        first_millis: first.and_then(entry_millis),
        last_millis: last.and_then(entry_millis),
        ..OplogWindow::default()
    };
    if let Some(stats) = coll_stats {
        let inner = match stats.get("storageStats") {
            Some(Bson::Document(inner)) => inner,
            _ => stats,
        };
        // `collStats` divides sizes by `scale` when one was given; undo it so
        // the exported value is always bytes.
        let scale = scale_factor(inner);
        let bytes = |key: &str| inner.get(key).and_then(num).and_then(Num::non_negative).map(|v| v.times(scale));
        window.size_bytes = bytes("size");
        // 0 would mean "no maximum", which a capped oplog never has.
        window.max_size_bytes = bytes("maxSize").filter(|v| v.as_f64() > 0.0);
    }
    (window != OplogWindow::default()).then_some(window)
}

/// Unix seconds of an oplog entry: `ts` first, `wall` as fallback, the epoch
/// treated as absent (no real entry is dated 1970).
fn entry_millis(entry: &Document) -> Option<i64> {
    date_or_timestamp_millis(entry.get("ts"))
        .filter(|ms| *ms > 0)
        .or_else(|| date_or_timestamp_millis(entry.get("wall")).filter(|ms| *ms > 0))
}

/// `scaleFactor` of a collStats/dbStats reply as an integer factor (the
/// server only accepts integral scales); 1 when absent or nonsensical.
pub(crate) fn scale_factor(reply: &Document) -> i64 {
    f64_of(reply.get("scaleFactor")).filter(|s| *s >= 1.0 && *s <= 1e15).map_or(1, |s| s as i64)
}

/// Emits the oplog families (no labels; see the module docs).
pub fn encode(window: &OplogWindow, out: &mut Exposition) {
    if let Some(ms) = window.first_millis {
        out.add_plain(&FIRST, ms as f64 / 1000.0);
    }
    if let Some(ms) = window.last_millis {
        out.add_plain(&LAST, ms as f64 / 1000.0);
    }
    if let Some(v) = window.window_secs() {
        out.add_plain(&WINDOW, v);
    }
    if let Some(v) = window.size_bytes {
        out.add_plain(&SIZE, v);
    }
    if let Some(v) = window.max_size_bytes {
        out.add_plain(&MAX_SIZE, v);
    }
}

/// Every descriptor this module can emit.
pub fn descriptors() -> Vec<&'static Desc> {
    ALL.to_vec()
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{doc, DateTime, Timestamp};

    use super::*;

    #[test]
    fn window_from_ts_with_wall_fallback() {
        let first = doc! {"ts": Timestamp { time: 1_000, increment: 1 }, "wall": DateTime::from_millis(1_000_500)};
        let last = doc! {"ts": "garbage", "wall": DateTime::from_millis(4_600_000)};
        let w = parse(Some(&first), Some(&last), None).expect("window");
        assert_eq!(w.first_millis, Some(1_000_000));
        assert_eq!(w.last_millis, Some(4_600_000));
        assert_eq!(w.window_secs(), Some(3600.0));
    }

    #[test]
    fn nothing_usable_is_none() {
        assert_eq!(parse(None, None, None), None);
        assert_eq!(parse(Some(&doc! {}), Some(&doc! {"ts": 5}), Some(&doc! {"size": "x"})), None);
    }

    #[test]
    fn descriptors_are_well_formed() {
        assert!(descriptors().iter().all(|d| d.is_well_formed()));
    }
}
