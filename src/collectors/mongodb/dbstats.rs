//! dbStats per database (placeholder API; being written).
use mongodb::bson::Document;

use crate::metrics::{Desc, Exposition};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbStats {}

pub fn parse(_db: &str, _doc: &Document) -> DbStats {
    DbStats {}
}

pub fn encode(_stats: &[DbStats], _out: &mut Exposition) {}

pub fn descriptors() -> Vec<&'static Desc> {
    Vec::new()
}
