//! The one integration-test binary. Modules mirror the layers: parsers on real
//! captures, golden expositions, HTTP on port 0, live servers started here.

mod config_cli;
mod harness;
mod http;
mod redis_live;
mod redis_parse;
mod redis_tls;
mod support;
