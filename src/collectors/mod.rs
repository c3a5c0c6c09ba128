//! Collectors: each talks to one kind of target (I/O), turns replies into plain
//! snapshot structs (pure parsing) and encodes snapshots into an
//! [`Exposition`](crate::metrics::Exposition) (pure formatting).

pub mod mongodb;
pub mod redis;
