//! The one integration-test binary. Modules mirror the layers: parsers on real
//! captures, golden expositions, HTTP on port 0, live servers started here.

mod alert_rules;
mod config_cli;
mod dashboards;
mod discovery;
mod doctor;
mod e2e;
mod fault_matrix;
mod harness;
mod http;
mod mongo_collstats;
mod mongo_hostile;
mod mongo_live;
mod mongo_replay_selftest;
mod mongo_replset;
mod mongo_server_status;
mod proptest_parsers;
mod redis_live;
mod redis_parse;
mod redis_tls;
mod secrets;
mod support;
mod tenderly_keys;
mod tenderly_queries;
mod web_security;
