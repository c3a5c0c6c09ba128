//! Tenderly application signals: the DBA guide's manual checks made
//! continuous. Redis key families (`keys`), Redis and MongoDB security posture
//! (`redis_posture`, `mongo_posture`), config-driven MongoDB query metrics and
//! audit-event counters (`queries`, `audit`), and backup freshness (`backups`).

pub mod audit;
pub mod backups;
pub mod keys;
pub mod mongo_posture;
pub mod queries;
pub mod redis_posture;
