//! Profiler counters (placeholder API; being written).
use mongodb::bson::Document;

use crate::metrics::{Desc, Exposition};

/// Cumulative profiler counters of one database, kept by the client between scrapes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbProfile {}

impl DbProfile {
    pub fn new(_db: &str) -> Self {
        DbProfile {}
    }

    /// The filter for the next `find` on `<db>.system.profile`.
    pub fn next_filter(&self) -> Document {
        Document::new()
    }

    /// Folds newly read profiler documents (sorted by `ts` ascending) into the counters.
    pub fn ingest(&mut self, _docs: &[Document]) {}

    /// The `profile: -1` reply (`was`, `slowms`).
    pub fn set_level(&mut self, _reply: &Document) {}
}

pub fn encode(_profiles: &[DbProfile], _out: &mut Exposition) {}

pub fn descriptors() -> Vec<&'static Desc> {
    Vec::new()
}
