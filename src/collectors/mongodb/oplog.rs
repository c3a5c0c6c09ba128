//! Oplog window (placeholder API; being written).
use mongodb::bson::Document;

use crate::metrics::{Desc, Exposition};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OplogWindow {}

/// From the first and last `local.oplog.rs` entries (projection `{ts: 1, wall: 1}`)
/// and `collStats` of `local.oplog.rs` (size, maxSize).
pub fn parse(_first: Option<&Document>, _last: Option<&Document>, _coll_stats: Option<&Document>) -> Option<OplogWindow> {
    None
}

pub fn encode(_window: &OplogWindow, _out: &mut Exposition) {}

pub fn descriptors() -> Vec<&'static Desc> {
    Vec::new()
}
