//! Snapshot -> metrics for a MongoDB target: the node-level families here, the
//! rest delegated to each command family's module.

use super::MongoSnapshot;
use crate::metrics::{Desc, Exposition};

pub const UP: Desc =
    Desc::gauge("mongodb_up", "Whether the last scrape of this MongoDB target succeeded (1) or not (0).");

/// `mongodb_up`: always emitted, whether or not the scrape succeeded.
pub fn encode_up(up: bool, out: &mut Exposition) {
    out.add_plain(&UP, up);
}

/// Every family of an up target.
pub fn encode(snapshot: &MongoSnapshot, out: &mut Exposition) {
    if let Some(ss) = &snapshot.server_status {
        super::server_status::encode(ss, out);
    }
    super::replset::encode(snapshot.replset_status.as_ref(), snapshot.replset_config.as_ref(), out);
    if let Some(window) = &snapshot.oplog {
        super::oplog::encode(window, out);
    }
    if let Some(ops) = &snapshot.current_op {
        super::current_op::encode(ops, out);
    }
    super::dbstats::encode(&snapshot.dbstats, out);
    super::profile::encode(&snapshot.profiler, out);
    if let Some(collections) = &snapshot.collections {
        super::collstats::encode(collections, out);
    }
}

/// Every descriptor the MongoDB collector can emit.
pub fn descriptors() -> Vec<&'static Desc> {
    let mut all = vec![&UP];
    all.extend(super::server_status::descriptors());
    all.extend(super::replset::descriptors());
    all.extend(super::oplog::descriptors());
    all.extend(super::current_op::descriptors());
    all.extend(super::dbstats::descriptors());
    all.extend(super::profile::descriptors());
    all.extend(super::collstats::descriptors());
    all
}
