//! The one integration-test binary. Modules mirror the layers: parsers on real
//! captures, golden expositions, HTTP on port 0, live servers started here.

mod harness;
mod http;
mod redis_live;
mod redis_parse;
mod support;
mod redis_tls;
