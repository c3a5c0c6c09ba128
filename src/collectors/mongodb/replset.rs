//! replSetGetStatus and replSetGetConfig (placeholder API; being written).
use mongodb::bson::Document;

use crate::metrics::{Desc, Exposition};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplSetStatus {}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplSetConfig {}

pub fn parse_status(_doc: &Document) -> ReplSetStatus {
    ReplSetStatus {}
}

pub fn parse_config(_doc: &Document) -> ReplSetConfig {
    ReplSetConfig {}
}

pub fn encode(_status: Option<&ReplSetStatus>, _config: Option<&ReplSetConfig>, _out: &mut Exposition) {}

pub fn descriptors() -> Vec<&'static Desc> {
    Vec::new()
}
