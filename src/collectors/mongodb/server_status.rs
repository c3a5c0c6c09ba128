//! serverStatus: curated, typed metrics (placeholder API; being written).
use mongodb::bson::Document;

use crate::metrics::{Desc, Exposition};

/// The parts of serverStatus the exporter uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerStatus {}

/// Reads a serverStatus reply. Missing sections are skipped, never an error.
pub fn parse(_doc: &Document) -> ServerStatus {
    ServerStatus {}
}

/// Emits the serverStatus families.
pub fn encode(_status: &ServerStatus, _out: &mut Exposition) {}

/// Every descriptor this module can emit.
pub fn descriptors() -> Vec<&'static Desc> {
    Vec::new()
}
