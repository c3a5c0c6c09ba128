//! Long-running operations from `$currentOp` (placeholder API; being written).
use mongodb::bson::Document;

use crate::metrics::{Desc, Exposition};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CurrentOps {}

/// `ops`: documents from `{$currentOp: {allUsers: true, idleConnections: false}}`
/// filtered to `active: true`; `threshold_secs`: what counts as long-running.
pub fn parse(_ops: &[Document], _threshold_secs: f64) -> CurrentOps {
    CurrentOps {}
}

pub fn encode(_ops: &CurrentOps, _out: &mut Exposition) {}

pub fn descriptors() -> Vec<&'static Desc> {
    Vec::new()
}
