//! The one integration-test binary. Modules are grouped by the layer they
//! test, bottom up: parsers on real captures and golden expositions, the
//! generic collectors against live servers, the Tenderly layer, the HTTP
//! surface and the binary's edges, then the shipped files and the whole stack.

// Test support: servers, the replay server, processes and skips, goldens, PromQL.
mod support;

// -- The shape of the crate --
mod architecture; // layers import only downwards; no cycles; cli.rs imports nothing

// -- Parsers and encoders (pure: captures in, expositions out) --
mod metrics_doc; // docs/metrics.md rendered from the declarations
mod mongo_replset; // replSetGetStatus/Config, oplog, currentOp, dbStats, profiler parsers
mod mongo_server_status; // serverStatus parser and encoder on every capture
mod proptest_parsers; // property tests for every parser of untrusted input
mod redis_parse; // INFO parser and encoder on every capture

// -- Generic collectors against live servers (real redis-server, MongoDB replay server) --
mod harness; // the live-test harness itself
mod mongo_collstats; // opt-in top/$collStats/$indexStats
mod mongo_hostile; // hostile MongoDB replies: deep nesting, oversized cursors, member counts
mod mongo_live; // the MongoDB collector through the real driver
mod mongo_replay_selftest; // the replay server answers like a mongod
mod redis_depth; // clients by name, LATENCY HISTOGRAM as a histogram, largest key per family
mod redis_hostile; // hostile Redis replies: 50 MB INFO, endless bulk strings, dead targets
mod redis_live; // the Redis collector on real servers, roles and ACLs
mod redis_tls; // Redis over TLS with throwaway certificates
mod redis_url;
mod sentinel; // Sentinel targets: redis_sentinel_*, no error replies, failover, discovery // percent-encoded credentials in redis:// URLs

// -- The Tenderly application layer --
mod dba_checks; // TTL counters, certificate expiry, required indexes, FCV, config drift (issue 12)
mod tenderly_keys; // key families and Redis posture on real servers
mod tenderly_queries; // queries, audit counters and MongoDB posture

// -- HTTP surface, orchestration and the binary's edges --
mod config_cli; // flags, config file, --check-config
mod discovery; // /discover and member probes
mod doctor; // the doctor subcommand
mod errors; // errors say where and why: addresses, causes, password hints, a dead MongoDB answers at once
mod exposition_formats; // Accept/gzip negotiation; promtool and OpenMetrics-parser clean on every role
mod fault_matrix; // two targets, one failing in every way
mod http; // routing, content types, deadlines, limits
mod http_hostile; // slow readers, idle floods, hung targets, Host headers
mod member_trust; // credentials only to allowed members: fake replicas, hostile CLUSTER NODES and hello
mod rotation; // rotated secret files without a restart, POST /-/reload
mod secrets; // no secret in any output
mod web_security; // TLS and basic auth on the exporter's endpoints

// -- Shipped files and the whole stack --
mod alert_routing; // deploy/alertmanager.yml: the security receiver (amtool routes test), inhibitions
mod alert_rules; // alert rules: names, runbooks, promtool
mod dashboards; // dashboards, deploy files, systemd unit
mod demo; // scripts/demo.sh end to end: exactly the listed alerts fire; Ctrl-C leaves nothing behind
mod e2e; // Prometheus + Alertmanager + exporter + databases
mod kubernetes; // Dockerfile and deploy/kubernetes: manifests, Deployment security, generated rules and dashboards
mod shipped_files; // examples/targets.yml, deploy/*, alerts, the demo and README tell one story
