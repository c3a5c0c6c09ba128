//! Pure encoder: a [`RedisSnapshot`] in, samples into an [`Exposition`] out.
//!
//! Names follow oliver006/redis_exporter wherever Grafana dashboard 763, the
//! redis-mixin or the awesome-prometheus-alerts Redis rules query them, so a
//! user can switch exporters without losing dashboards. Where that exporter
//! types a monotonic value as a gauge, or names a value in ms/usec/percent,
//! and nothing depends on the name, this module uses a counter with `_total`,
//! base units (seconds, bytes) and ratios instead. Every difference is listed
//! in docs/migrating.md (From oliver006/redis_exporter).
//!
//! Redis prints `-1` for "never happened" / "not applicable" in several
//! duration and age fields (`rdb_last_bgsave_time_sec`, `master_last_io_seconds_ago`,
//! `master_link_down_since_seconds` during the first sync). Those are not
//! exported as negative durations: the series is simply absent for that scrape.
//!
//! Every family is declared once below; [`descriptors`] lists them all.

use super::info::{bounded_label, parse_f64, parse_number, parse_percent_ratio, Info, Number};
use super::RedisSnapshot;
use crate::metrics::{BaseUnit, Desc, Exposition, Kind, Label, Value};

// ---- up -------------------------------------------------------------------
const UP: Desc = Desc::gauge("redis_up", "Whether the last scrape of this Redis target succeeded (1) or not (0).");

// ---- Server ---------------------------------------------------------------
const UPTIME: Desc =
    Desc::gauge("redis_uptime_in_seconds", "Seconds since the Redis server started, from INFO uptime_in_seconds.")
        .unit(BaseUnit::Seconds);
const START_TIME: Desc = Desc::gauge(
    "redis_start_time_seconds",
    "Unix time the Redis server started, computed as INFO server_time_usec minus uptime_in_seconds.",
)
.unit(BaseUnit::Seconds);
const INSTANCE_INFO: Desc = Desc::gauge(
    "redis_instance_info",
    "Constant 1 labelled with the server's role, version, build, mode, OS, eviction policy, port, run id, pid and replication id.",
).labels(&["role", "redis_version", "redis_build_id", "redis_mode", "os", "maxmemory_policy", "tcp_port", "run_id", "process_id", "master_replid"]);
const IO_THREADS_ACTIVE: Desc = Desc::gauge(
    "redis_io_threads_active",
    "Whether I/O threads are active (1) or not (0), from INFO io_threads_active.",
);

// ---- Clients --------------------------------------------------------------
const CONNECTED_CLIENTS: Desc =
    Desc::gauge("redis_connected_clients", "Client connections, excluding replicas, from INFO connected_clients.");
const BLOCKED_CLIENTS: Desc = Desc::gauge(
    "redis_blocked_clients",
    "Clients waiting on a blocking call (BLPOP, XREAD, WAIT, ...), from INFO blocked_clients.",
);
const TRACKING_CLIENTS: Desc = Desc::gauge(
    "redis_tracking_clients",
    "Clients with client-side caching tracking enabled, from INFO tracking_clients.",
);
const CLIENTS_IN_TIMEOUT_TABLE: Desc = Desc::gauge(
    "redis_clients_in_timeout_table",
    "Blocked clients with a timeout, from INFO clients_in_timeout_table.",
);
const PUBSUB_CLIENTS: Desc =
    Desc::gauge("redis_pubsub_clients", "Clients in Pub/Sub mode (Redis 7.4+), from INFO pubsub_clients.");
const CLUSTER_CONNECTIONS: Desc =
    Desc::gauge("redis_cluster_connections", "Cluster bus connections, from INFO cluster_connections.");
const MAX_CLIENTS: Desc =
    Desc::gauge("redis_max_clients", "Maximum number of client connections, from INFO maxclients.");
const CONFIG_MAXCLIENTS: Desc = Desc::gauge(
    "redis_config_maxclients",
    "Configured maximum number of client connections (maxclients), read from INFO maxclients.",
);
const CLIENT_RECENT_MAX_INPUT_BUFFER: Desc = Desc::gauge(
    "redis_client_recent_max_input_buffer_bytes",
    "Largest client query buffer over the last few seconds, from INFO client_recent_max_input_buffer.",
)
.unit(BaseUnit::Bytes);
const CLIENT_RECENT_MAX_OUTPUT_BUFFER: Desc = Desc::gauge(
    "redis_client_recent_max_output_buffer_bytes",
    "Largest client output buffer over the last few seconds, from INFO client_recent_max_output_buffer.",
)
.unit(BaseUnit::Bytes);

// ---- Memory ---------------------------------------------------------------
const MEMORY_USED: Desc =
    Desc::gauge("redis_memory_used_bytes", "Memory allocated by Redis through its allocator, from INFO used_memory.")
        .unit(BaseUnit::Bytes);
const MEMORY_USED_RSS: Desc =
    Desc::gauge("redis_memory_used_rss_bytes", "Resident set size of the Redis process, from INFO used_memory_rss.")
        .unit(BaseUnit::Bytes);
const MEMORY_USED_PEAK: Desc =
    Desc::gauge("redis_memory_used_peak_bytes", "Peak of used_memory since start, from INFO used_memory_peak.")
        .unit(BaseUnit::Bytes);
const MEMORY_USED_OVERHEAD: Desc = Desc::gauge(
    "redis_memory_used_overhead_bytes",
    "Memory used for internal bookkeeping rather than data, from INFO used_memory_overhead.",
)
.unit(BaseUnit::Bytes);
const MEMORY_USED_STARTUP: Desc =
    Desc::gauge("redis_memory_used_startup_bytes", "Memory used at startup, from INFO used_memory_startup.")
        .unit(BaseUnit::Bytes);
const MEMORY_USED_DATASET: Desc =
    Desc::gauge("redis_memory_used_dataset_bytes", "Memory used by the dataset, from INFO used_memory_dataset.")
        .unit(BaseUnit::Bytes);
const MEMORY_USED_LUA: Desc =
    Desc::gauge("redis_memory_used_lua_bytes", "Memory used by the Lua engine, from INFO used_memory_lua.")
        .unit(BaseUnit::Bytes);
const MEMORY_USED_SCRIPTS: Desc =
    Desc::gauge("redis_memory_used_scripts_bytes", "Memory used by cached scripts, from INFO used_memory_scripts.")
        .unit(BaseUnit::Bytes);
const MEMORY_MAX: Desc = Desc::gauge(
    "redis_memory_max_bytes",
    "Configured memory limit (maxmemory), 0 meaning no limit, from INFO maxmemory.",
)
.unit(BaseUnit::Bytes);
const CONFIG_MAXMEMORY: Desc = Desc::gauge(
    "redis_config_maxmemory",
    "Configured memory limit in bytes (maxmemory), 0 meaning no limit, read from INFO maxmemory.",
);
const TOTAL_SYSTEM_MEMORY: Desc = Desc::gauge(
    "redis_total_system_memory_bytes",
    "Total memory of the host Redis runs on, from INFO total_system_memory.",
)
.unit(BaseUnit::Bytes);
const MEM_FRAGMENTATION_RATIO: Desc = Desc::gauge(
    "redis_mem_fragmentation_ratio",
    "Ratio of resident memory to used memory, from INFO mem_fragmentation_ratio.",
);
const MEM_FRAGMENTATION: Desc = Desc::gauge(
    "redis_mem_fragmentation_bytes",
    "Resident memory minus used memory (may be negative), from INFO mem_fragmentation_bytes.",
)
.unit(BaseUnit::Bytes);
const ALLOCATOR_ALLOCATED: Desc =
    Desc::gauge("redis_allocator_allocated_bytes", "Bytes allocated by the allocator, from INFO allocator_allocated.")
        .unit(BaseUnit::Bytes);
const ALLOCATOR_ACTIVE: Desc =
    Desc::gauge("redis_allocator_active_bytes", "Bytes in active allocator pages, from INFO allocator_active.")
        .unit(BaseUnit::Bytes);
const ALLOCATOR_RESIDENT: Desc =
    Desc::gauge("redis_allocator_resident_bytes", "Bytes resident in the allocator, from INFO allocator_resident.")
        .unit(BaseUnit::Bytes);
const ALLOCATOR_FRAG_RATIO: Desc = Desc::gauge(
    "redis_allocator_frag_ratio",
    "Allocator fragmentation (active over allocated), from INFO allocator_frag_ratio.",
);
const ALLOCATOR_FRAG_BYTES: Desc = Desc::gauge(
    "redis_allocator_frag_bytes",
    "Allocator fragmentation in bytes (active minus allocated; can be negative), from INFO allocator_frag_bytes.",
)
.unit(BaseUnit::Bytes);
const ALLOCATOR_RSS_BYTES: Desc = Desc::gauge(
    "redis_allocator_rss_bytes",
    "Allocator resident minus active bytes (can be negative), from INFO allocator_rss_bytes.",
)
.unit(BaseUnit::Bytes);
const ALLOCATOR_RSS_RATIO: Desc =
    Desc::gauge("redis_allocator_rss_ratio", "Allocator resident over active, from INFO allocator_rss_ratio.");
const MEM_NOT_COUNTED_FOR_EVICT: Desc = Desc::gauge(
    "redis_mem_not_counted_for_eviction_bytes",
    "Replica and AOF buffers not counted towards maxmemory, from INFO mem_not_counted_for_evict.",
)
.unit(BaseUnit::Bytes);
const MEM_TOTAL_REPLICATION_BUFFERS: Desc = Desc::gauge(
    "redis_mem_total_replication_buffers_bytes",
    "Memory used by replication buffers, from INFO mem_total_replication_buffers.",
)
.unit(BaseUnit::Bytes);
const MEM_CLIENTS_SLAVES: Desc = Desc::gauge(
    "redis_mem_clients_slaves_bytes",
    "Memory used by replica client buffers, from INFO mem_clients_slaves.",
)
.unit(BaseUnit::Bytes);
const MEM_CLIENTS_NORMAL: Desc = Desc::gauge(
    "redis_mem_clients_normal_bytes",
    "Memory used by normal client buffers, from INFO mem_clients_normal.",
)
.unit(BaseUnit::Bytes);
const LAZYFREE_PENDING_OBJECTS: Desc = Desc::gauge(
    "redis_lazyfree_pending_objects",
    "Objects waiting to be freed in the background, from INFO lazyfree_pending_objects.",
);
const ACTIVE_DEFRAG_RUNNING: Desc = Desc::gauge(
    "redis_active_defrag_running",
    "Whether active defragmentation is running, from INFO active_defrag_running.",
);

// ---- Persistence ----------------------------------------------------------
const LOADING: Desc = Desc::gauge(
    "redis_loading_dump_file",
    "Whether the server is loading a dump file at startup (1) or not (0), from INFO loading.",
);
const ASYNC_LOADING: Desc = Desc::gauge(
    "redis_async_loading",
    "Whether a replica is loading a dataset while serving the old one (1) or not (0), from INFO async_loading.",
);
const LOADING_PROGRESS: Desc = Desc::gauge(
    "redis_loading_progress_ratio",
    "Fraction of the dump file loaded so far (present while loading), from INFO loading_loaded_perc.",
);
const LOADING_ETA: Desc = Desc::gauge(
    "redis_loading_eta_seconds",
    "Estimated seconds until loading completes (present while loading), from INFO loading_eta_seconds.",
)
.unit(BaseUnit::Seconds);
const CURRENT_COW_SIZE: Desc = Desc::gauge(
    "redis_current_cow_size_bytes",
    "Copy-on-write memory of the running fork child, from INFO current_cow_size.",
)
.unit(BaseUnit::Bytes);
const CURRENT_FORK_PROGRESS: Desc = Desc::gauge(
    "redis_current_fork_progress_ratio",
    "Progress of the running fork child (RDB, AOF rewrite or module fork), from INFO current_fork_perc.",
);
const RDB_CHANGES_SINCE_LAST_SAVE: Desc = Desc::gauge(
    "redis_rdb_changes_since_last_save",
    "Writes since the last successful RDB save, from INFO rdb_changes_since_last_save.",
);
const RDB_BGSAVE_IN_PROGRESS: Desc = Desc::gauge(
    "redis_rdb_bgsave_in_progress",
    "Whether a BGSAVE is running (1) or not (0), from INFO rdb_bgsave_in_progress.",
);
const RDB_LAST_SAVE_TIMESTAMP: Desc = Desc::gauge(
    "redis_rdb_last_save_timestamp_seconds",
    "Unix time of the last successful RDB save, from INFO rdb_last_save_time.",
)
.unit(BaseUnit::Seconds);
const RDB_LAST_BGSAVE_STATUS: Desc = Desc::gauge(
    "redis_rdb_last_bgsave_status",
    "Whether the last BGSAVE succeeded (1) or failed (0), from INFO rdb_last_bgsave_status.",
);
const RDB_LAST_BGSAVE_DURATION: Desc = Desc::gauge(
    "redis_rdb_last_bgsave_duration_seconds",
    "Duration of the last BGSAVE (absent if none ran yet), from INFO rdb_last_bgsave_time_sec.",
)
.unit(BaseUnit::Seconds);
const RDB_CURRENT_BGSAVE_DURATION: Desc = Desc::gauge(
    "redis_rdb_current_bgsave_duration_seconds",
    "Duration of the running BGSAVE (absent if none is running), from INFO rdb_current_bgsave_time_sec.",
)
.unit(BaseUnit::Seconds);
const RDB_SAVES: Desc = Desc::counter("redis_rdb_saves_total", "RDB saves performed since start, from INFO rdb_saves.");
const RDB_LAST_COW_SIZE: Desc = Desc::gauge(
    "redis_rdb_last_cow_size_bytes",
    "Copy-on-write memory of the last RDB save, from INFO rdb_last_cow_size.",
)
.unit(BaseUnit::Bytes);
const AOF_ENABLED: Desc =
    Desc::gauge("redis_aof_enabled", "Whether AOF persistence is on (1) or off (0), from INFO aof_enabled.");
const AOF_REWRITE_IN_PROGRESS: Desc = Desc::gauge(
    "redis_aof_rewrite_in_progress",
    "Whether an AOF rewrite is running (1) or not (0), from INFO aof_rewrite_in_progress.",
);
const AOF_REWRITE_SCHEDULED: Desc = Desc::gauge(
    "redis_aof_rewrite_scheduled",
    "Whether an AOF rewrite is scheduled after the running save (1) or not (0), from INFO aof_rewrite_scheduled.",
);
const AOF_LAST_REWRITE_DURATION: Desc = Desc::gauge(
    "redis_aof_last_rewrite_duration_seconds",
    "Duration of the last AOF rewrite (absent if none ran yet), from INFO aof_last_rewrite_time_sec.",
)
.unit(BaseUnit::Seconds);
const AOF_CURRENT_REWRITE_DURATION: Desc = Desc::gauge(
    "redis_aof_current_rewrite_duration_seconds",
    "Duration of the running AOF rewrite (absent if none is running), from INFO aof_current_rewrite_time_sec.",
)
.unit(BaseUnit::Seconds);
const AOF_LAST_BGREWRITE_STATUS: Desc = Desc::gauge(
    "redis_aof_last_bgrewrite_status",
    "Whether the last AOF rewrite succeeded (1) or failed (0), from INFO aof_last_bgrewrite_status.",
);
const AOF_LAST_WRITE_STATUS: Desc = Desc::gauge(
    "redis_aof_last_write_status",
    "Whether the last AOF write succeeded (1) or failed (0), from INFO aof_last_write_status.",
);
const AOF_REWRITES: Desc =
    Desc::counter("redis_aof_rewrites_total", "AOF rewrites performed since start, from INFO aof_rewrites.");
const AOF_LAST_COW_SIZE: Desc = Desc::gauge(
    "redis_aof_last_cow_size_bytes",
    "Copy-on-write memory of the last AOF rewrite, from INFO aof_last_cow_size.",
)
.unit(BaseUnit::Bytes);
const AOF_CURRENT_SIZE: Desc = Desc::gauge(
    "redis_aof_current_size_bytes",
    "Current AOF size (present when AOF is on), from INFO aof_current_size.",
)
.unit(BaseUnit::Bytes);
const AOF_BASE_SIZE: Desc = Desc::gauge(
    "redis_aof_base_size_bytes",
    "AOF size at the last rewrite or startup (present when AOF is on), from INFO aof_base_size.",
)
.unit(BaseUnit::Bytes);

// ---- Stats ----------------------------------------------------------------
const CONNECTIONS_RECEIVED: Desc = Desc::counter(
    "redis_connections_received_total",
    "Connections accepted since start, from INFO total_connections_received.",
);
const COMMANDS_PROCESSED: Desc = Desc::counter(
    "redis_commands_processed_total",
    "Commands processed since start, from INFO total_commands_processed.",
);
const REJECTED_CONNECTIONS: Desc = Desc::counter(
    "redis_rejected_connections_total",
    "Connections rejected because of maxclients, from INFO rejected_connections.",
);
const NET_INPUT: Desc =
    Desc::counter("redis_net_input_bytes_total", "Bytes read from the network, from INFO total_net_input_bytes.")
        .unit(BaseUnit::Bytes);
const NET_OUTPUT: Desc =
    Desc::counter("redis_net_output_bytes_total", "Bytes written to the network, from INFO total_net_output_bytes.")
        .unit(BaseUnit::Bytes);
const NET_REPL_INPUT: Desc = Desc::counter(
    "redis_net_repl_input_bytes_total",
    "Bytes read from the network for replication, from INFO total_net_repl_input_bytes.",
)
.unit(BaseUnit::Bytes);
const NET_REPL_OUTPUT: Desc = Desc::counter(
    "redis_net_repl_output_bytes_total",
    "Bytes written to the network for replication, from INFO total_net_repl_output_bytes.",
)
.unit(BaseUnit::Bytes);
const EXPIRED_KEYS: Desc =
    Desc::counter("redis_expired_keys_total", "Keys expired since start, from INFO expired_keys.");
const EXPIRED_STALE_RATIO: Desc = Desc::gauge(
    "redis_expired_stale_ratio",
    "Estimated fraction of keys that are expired but not yet reclaimed, from INFO expired_stale_perc.",
);
const EXPIRED_TIME_CAP_REACHED: Desc = Desc::counter(
    "redis_expired_time_cap_reached_total",
    "Active expiry cycles that stopped early on their time budget, from INFO expired_time_cap_reached_count.",
);
const EXPIRE_CYCLE_CPU: Desc = Desc::counter(
    "redis_expire_cycle_cpu_seconds_total",
    "CPU time spent in active expiry cycles, from INFO expire_cycle_cpu_milliseconds.",
)
.unit(BaseUnit::Seconds);
const EVICTED_KEYS: Desc =
    Desc::counter("redis_evicted_keys_total", "Keys evicted because of maxmemory since start, from INFO evicted_keys.");
const EVICTED_CLIENTS: Desc = Desc::counter(
    "redis_evicted_clients_total",
    "Clients evicted because of maxmemory-clients since start, from INFO evicted_clients.",
);
const EVICTION_EXCEEDED_TIME: Desc = Desc::counter(
    "redis_eviction_exceeded_time_seconds_total",
    "Time used_memory spent above maxmemory, from INFO total_eviction_exceeded_time.",
)
.unit(BaseUnit::Seconds);
const KEYSPACE_HITS: Desc =
    Desc::counter("redis_keyspace_hits_total", "Successful key lookups since start, from INFO keyspace_hits.");
const KEYSPACE_MISSES: Desc =
    Desc::counter("redis_keyspace_misses_total", "Failed key lookups since start, from INFO keyspace_misses.");
const PUBSUB_CHANNELS: Desc =
    Desc::gauge("redis_pubsub_channels", "Pub/Sub channels with subscribers, from INFO pubsub_channels.");
const PUBSUB_PATTERNS: Desc =
    Desc::gauge("redis_pubsub_patterns", "Pub/Sub pattern subscriptions, from INFO pubsub_patterns.");
const PUBSUBSHARD_CHANNELS: Desc =
    Desc::gauge("redis_pubsubshard_channels", "Sharded Pub/Sub channels, from INFO pubsubshard_channels.");
const LATEST_FORK: Desc =
    Desc::gauge("redis_latest_fork_seconds", "Duration of the latest fork() call, from INFO latest_fork_usec.")
        .unit(BaseUnit::Seconds);
const FORKS: Desc = Desc::counter("redis_forks_total", "fork() calls since start, from INFO total_forks.");
const REPLICA_RESYNCS_FULL: Desc = Desc::counter(
    "redis_replica_resyncs_full_total",
    "Full resynchronisations with replicas since start, from INFO sync_full.",
);
const REPLICA_PARTIAL_RESYNC_ACCEPTED: Desc = Desc::counter(
    "redis_replica_partial_resync_accepted_total",
    "Accepted partial resynchronisation requests, from INFO sync_partial_ok.",
);
const REPLICA_PARTIAL_RESYNC_DENIED: Desc = Desc::counter(
    "redis_replica_partial_resync_denied_total",
    "Denied partial resynchronisation requests, from INFO sync_partial_err.",
);
const ERROR_REPLIES: Desc =
    Desc::counter("redis_error_replies_total", "Error replies sent since start, from INFO total_error_replies.");
const UNEXPECTED_ERROR_REPLIES: Desc = Desc::counter(
    "redis_unexpected_error_replies_total",
    "Unexpected error replies (AOF load or replication errors), from INFO unexpected_error_replies.",
);
const READS_PROCESSED: Desc =
    Desc::counter("redis_reads_processed_total", "Read events processed since start, from INFO total_reads_processed.");
const WRITES_PROCESSED: Desc = Desc::counter(
    "redis_writes_processed_total",
    "Write events processed since start, from INFO total_writes_processed.",
);
const ACL_DENIED_AUTH: Desc = Desc::counter(
    "redis_acl_access_denied_auth_total",
    "Failed AUTH attempts since start (Redis 7.2+), from INFO acl_access_denied_auth.",
);
const ACL_DENIED_CMD: Desc = Desc::counter(
    "redis_acl_access_denied_cmd_total",
    "Commands refused by ACL rules since start (Redis 7.2+), from INFO acl_access_denied_cmd.",
);
const ACL_DENIED_KEY: Desc = Desc::counter(
    "redis_acl_access_denied_key_total",
    "Key accesses refused by ACL rules since start (Redis 7.2+), from INFO acl_access_denied_key.",
);
const ACL_DENIED_CHANNEL: Desc = Desc::counter(
    "redis_acl_access_denied_channel_total",
    "Channel accesses refused by ACL rules since start (Redis 7.2+), from INFO acl_access_denied_channel.",
);

// ---- Replication ----------------------------------------------------------
const CONNECTED_SLAVES: Desc =
    Desc::gauge("redis_connected_slaves", "Replicas connected to this server, from INFO connected_slaves.");
const MIN_SLAVES_GOOD_SLAVES: Desc = Desc::gauge(
    "redis_min_slaves_good_slaves",
    "Replicas with lag within min-replicas-max-lag (present when min-replicas-to-write is set), from INFO min_slaves_good_slaves.",
);
const MASTER_REPL_OFFSET: Desc = Desc::gauge(
    "redis_master_repl_offset",
    "Replication offset of this server in bytes, from INFO master_repl_offset.",
);
const REPLICATION_BACKLOG: Desc = Desc::gauge(
    "redis_replication_backlog_bytes",
    "Size of the replication backlog buffer, from INFO repl_backlog_size.",
)
.unit(BaseUnit::Bytes);
const REPL_BACKLOG_ACTIVE: Desc = Desc::gauge(
    "redis_repl_backlog_is_active",
    "Whether the replication backlog is active, from INFO repl_backlog_active.",
);
const REPL_BACKLOG_FIRST_BYTE_OFFSET: Desc = Desc::gauge(
    "redis_repl_backlog_first_byte_offset",
    "Master offset of the first byte in the replication backlog, from INFO repl_backlog_first_byte_offset.",
);
const REPL_BACKLOG_HISTORY: Desc = Desc::gauge(
    "redis_repl_backlog_history_bytes",
    "Bytes of data in the replication backlog, from INFO repl_backlog_histlen.",
)
.unit(BaseUnit::Bytes);
const SLAVE_PRIORITY: Desc =
    Desc::gauge("redis_slave_priority", "Replica priority for failover election, from INFO slave_priority.");
const MASTER_LINK_UP: Desc = Desc::gauge(
    "redis_master_link_up",
    "On a replica, whether the link to its master is up (1) or not (0), from INFO master_link_status.",
)
.labels(&["master_host", "master_port"]);
const MASTER_LAST_IO: Desc = Desc::gauge(
    "redis_master_last_io_seconds_ago",
    "On a replica, seconds since the last interaction with its master (absent while syncing), from INFO master_last_io_seconds_ago.",
).labels(&["master_host", "master_port"]);
const MASTER_SYNC_IN_PROGRESS: Desc = Desc::gauge(
    "redis_master_sync_in_progress",
    "On a replica, whether a sync from its master is running (1) or not (0), from INFO master_sync_in_progress.",
)
.labels(&["master_host", "master_port"]);
const MASTER_LINK_DOWN_SINCE: Desc = Desc::gauge(
    "redis_master_link_down_since_seconds",
    "On a replica whose link is down, seconds since it went down (absent during the first sync), from INFO master_link_down_since_seconds.",
)
.unit(BaseUnit::Seconds).labels(&["master_host", "master_port"]);
const SLAVE_REPL_OFFSET: Desc = Desc::gauge(
    "redis_slave_repl_offset",
    "On a replica, its replication offset in bytes, from INFO slave_repl_offset.",
)
.labels(&["master_host", "master_port"]);
const SLAVE_INFO: Desc = Desc::gauge(
    "redis_slave_info",
    "On a replica, constant 1 labelled with its master's address and whether it is read-only.",
)
.labels(&["master_host", "master_port", "read_only"]);
const CONNECTED_SLAVE_OFFSET: Desc = Desc::gauge(
    "redis_connected_slave_offset_bytes",
    "On a master, the replication offset acknowledged by each replica, from INFO slaveN offset.",
)
.unit(BaseUnit::Bytes)
.labels(&["slave_ip", "slave_port"]);
const CONNECTED_SLAVE_LAG: Desc = Desc::gauge(
    "redis_connected_slave_lag_seconds",
    "On a master, seconds since each replica last acknowledged, from INFO slaveN lag.",
)
.unit(BaseUnit::Seconds)
.labels(&["slave_ip", "slave_port"]);

// ---- CPU ------------------------------------------------------------------
const CPU_SYS: Desc =
    Desc::counter("redis_cpu_sys_seconds_total", "System CPU time of the server, from INFO used_cpu_sys.")
        .unit(BaseUnit::Seconds);
const CPU_USER: Desc =
    Desc::counter("redis_cpu_user_seconds_total", "User CPU time of the server, from INFO used_cpu_user.")
        .unit(BaseUnit::Seconds);
const CPU_SYS_CHILDREN: Desc = Desc::counter(
    "redis_cpu_sys_children_seconds_total",
    "System CPU time of fork children, from INFO used_cpu_sys_children.",
)
.unit(BaseUnit::Seconds);
const CPU_USER_CHILDREN: Desc = Desc::counter(
    "redis_cpu_user_children_seconds_total",
    "User CPU time of fork children, from INFO used_cpu_user_children.",
)
.unit(BaseUnit::Seconds);
const CPU_SYS_MAIN_THREAD: Desc = Desc::counter(
    "redis_cpu_sys_main_thread_seconds_total",
    "System CPU time of the main thread, from INFO used_cpu_sys_main_thread.",
)
.unit(BaseUnit::Seconds);
const CPU_USER_MAIN_THREAD: Desc = Desc::counter(
    "redis_cpu_user_main_thread_seconds_total",
    "User CPU time of the main thread, from INFO used_cpu_user_main_thread.",
)
.unit(BaseUnit::Seconds);

// ---- Commandstats, Errorstats, Latencystats -------------------------------
const COMMANDS: Desc =
    Desc::counter("redis_commands_total", "Calls per command, from INFO commandstats calls.").labels(&["cmd"]);
const COMMANDS_DURATION: Desc = Desc::counter(
    "redis_commands_duration_seconds_total",
    "Time spent executing each command, from INFO commandstats usec.",
)
.unit(BaseUnit::Seconds)
.labels(&["cmd"]);
const COMMANDS_REJECTED: Desc = Desc::counter(
    "redis_commands_rejected_calls_total",
    "Calls per command refused before execution (bad arity, ACL, OOM, ...), from INFO commandstats rejected_calls.",
)
.labels(&["cmd"]);
const COMMANDS_FAILED: Desc = Desc::counter(
    "redis_commands_failed_calls_total",
    "Calls per command that failed during execution, from INFO commandstats failed_calls.",
)
.labels(&["cmd"]);
const ERRORS: Desc = Desc::counter(
    "redis_errors_total",
    "Error replies per error prefix (ERR, WRONGTYPE, NOAUTH, ...), from INFO errorstats.",
)
.labels(&["err"]);
const LATENCY_PERCENTILES: Desc = Desc::summary(
    "redis_latency_percentiles_seconds",
    "Per-command latency percentiles tracked by the server since start or CONFIG RESETSTAT, from INFO latencystats; _sum and _count are the command's usec and calls from INFO commandstats.",
)
.unit(BaseUnit::Seconds)
.labels(&["cmd"]);

// ---- Keyspace -------------------------------------------------------------
const DB_KEYS: Desc = Desc::gauge("redis_db_keys", "Keys per database, from INFO keyspace keys.").labels(&["db"]);
const DB_KEYS_EXPIRING: Desc =
    Desc::gauge("redis_db_keys_expiring", "Keys with a TTL per database, from INFO keyspace expires.").labels(&["db"]);
const DB_AVG_TTL: Desc = Desc::gauge(
    "redis_db_avg_ttl_seconds",
    "Estimated average TTL of expiring keys per database (0 when unknown, e.g. on replicas), from INFO keyspace avg_ttl.",
)
.unit(BaseUnit::Seconds).labels(&["db"]);
const DB_KEYS_WITH_EXPIRING_ITEMS: Desc = Desc::gauge(
    "redis_db_keys_with_expiring_items",
    "Keys holding fields with their own TTL per database, from INFO keyspace subexpiry (Redis 7.4+) or keys_with_volatile_items (Valkey).",
).labels(&["db"]);

// ---- Cluster --------------------------------------------------------------
const CLUSTER_ENABLED: Desc =
    Desc::gauge("redis_cluster_enabled", "Whether cluster mode is on (1) or off (0), from INFO cluster_enabled.");
const CLUSTER_STATE: Desc = Desc::gauge(
    "redis_cluster_state",
    "Whether the cluster state is ok (1) or fail (0), from CLUSTER INFO cluster_state.",
);
const CLUSTER_SLOTS_ASSIGNED: Desc = Desc::gauge(
    "redis_cluster_slots_assigned",
    "Slots assigned to some node, from CLUSTER INFO cluster_slots_assigned.",
);
const CLUSTER_SLOTS_OK: Desc = Desc::gauge(
    "redis_cluster_slots_ok",
    "Slots served by a node not in PFAIL or FAIL, from CLUSTER INFO cluster_slots_ok.",
);
const CLUSTER_SLOTS_PFAIL: Desc = Desc::gauge(
    "redis_cluster_slots_pfail",
    "Slots served by a node in PFAIL state, from CLUSTER INFO cluster_slots_pfail.",
);
const CLUSTER_SLOTS_FAIL: Desc = Desc::gauge(
    "redis_cluster_slots_fail",
    "Slots served by a node in FAIL state, from CLUSTER INFO cluster_slots_fail.",
);
const CLUSTER_KNOWN_NODES: Desc =
    Desc::gauge("redis_cluster_known_nodes", "Nodes known to this node, from CLUSTER INFO cluster_known_nodes.");
const CLUSTER_SIZE: Desc =
    Desc::gauge("redis_cluster_size", "Master nodes serving at least one slot, from CLUSTER INFO cluster_size.");
const CLUSTER_CURRENT_EPOCH: Desc =
    Desc::gauge("redis_cluster_current_epoch", "Cluster current epoch, from CLUSTER INFO cluster_current_epoch.");
const CLUSTER_MY_EPOCH: Desc =
    Desc::gauge("redis_cluster_my_epoch", "Config epoch of this node, from CLUSTER INFO cluster_my_epoch.");
const CLUSTER_MESSAGES_SENT: Desc = Desc::counter(
    "redis_cluster_messages_sent_total",
    "Cluster bus messages sent, from CLUSTER INFO cluster_stats_messages_sent.",
);
const CLUSTER_MESSAGES_RECEIVED: Desc = Desc::counter(
    "redis_cluster_messages_received_total",
    "Cluster bus messages received, from CLUSTER INFO cluster_stats_messages_received.",
);
const CLUSTER_LINKS_BUFFER_LIMIT_EXCEEDED: Desc = Desc::counter(
    "redis_cluster_links_buffer_limit_exceeded_total",
    "Cluster links freed for exceeding cluster-link-sendbuf-limit, from CLUSTER INFO total_cluster_links_buffer_limit_exceeded.",
);

// ---- Modules, slow log, latency monitor, config ----------------------------
const MODULE_INFO: Desc = Desc::gauge(
    "redis_module_info",
    "Constant 1 per loaded module, labelled with its name and version, from INFO modules.",
)
.labels(&["name", "ver"]);
const SLOWLOG_LENGTH: Desc = Desc::gauge("redis_slowlog_length", "Entries in the slow log, from SLOWLOG LEN.");
const SLOWLOG_LAST_ID: Desc = Desc::gauge(
    "redis_slowlog_last_id",
    "Id of the newest slow log entry (absent when the log is empty), from SLOWLOG GET 1.",
);
const SLOWLOG_LAST_TIMESTAMP: Desc = Desc::gauge(
    "redis_slowlog_last_timestamp_seconds",
    "Unix time of the newest slow log entry (absent when the log is empty), from SLOWLOG GET 1.",
)
.unit(BaseUnit::Seconds);
const LAST_SLOW_EXECUTION_DURATION: Desc = Desc::gauge(
    "redis_last_slow_execution_duration_seconds",
    "Execution time of the newest slow log entry (absent when the log is empty), from SLOWLOG GET 1.",
)
.unit(BaseUnit::Seconds);
const LATENCY_SPIKE_LAST: Desc =
    Desc::gauge("redis_latency_spike_last", "Unix time of the latest latency spike per event, from LATENCY LATEST.")
        .labels(&["event_name"]);
const LATENCY_SPIKE_DURATION: Desc = Desc::gauge(
    "redis_latency_spike_duration_seconds",
    "Duration of the latest latency spike per event, from LATENCY LATEST.",
)
.unit(BaseUnit::Seconds)
.labels(&["event_name"]);
const LATENCY_SPIKE_MAX_DURATION: Desc = Desc::gauge(
    "redis_latency_spike_max_duration_seconds",
    "Longest latency spike per event since start or LATENCY RESET, from LATENCY LATEST.",
)
.unit(BaseUnit::Seconds)
.labels(&["event_name"]);
const CONFIG_IO_THREADS: Desc =
    Desc::gauge("redis_config_io_threads", "Configured number of I/O threads, from CONFIG GET io-threads.");
const CONFIG_DATABASES: Desc =
    Desc::gauge("redis_config_databases", "Configured number of logical databases, from CONFIG GET databases.");

/// How a field's text becomes a sample value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conv {
    /// Integer or float as printed.
    Number,
    /// Like `Number`, but negative values are `-1` "not applicable" sentinels and are skipped.
    NonNegative,
    /// Microseconds to seconds.
    MicrosToSeconds,
    /// Milliseconds to seconds.
    MillisToSeconds,
    /// Whole seconds, negative sentinels skipped.
    SecondsNonNegative,
    /// `100.11%` or `0.00` to a ratio.
    PercentToRatio,
    /// `ok` -> 1, `err`/`fail` -> 0, anything else skipped.
    Status,
}

struct Scalar {
    field: &'static str,
    desc: &'static Desc,
    conv: Conv,
}

const fn scalar(field: &'static str, desc: &'static Desc, conv: Conv) -> Scalar {
    Scalar { field, desc, conv }
}

/// Unlabelled INFO fields, in exposition order. Absent fields emit nothing.
static INFO_SCALARS: &[Scalar] = &[
    // Negative uptime is not a duration: skipped, like the -1 sentinels.
    scalar("uptime_in_seconds", &UPTIME, Conv::NonNegative),
    scalar("io_threads_active", &IO_THREADS_ACTIVE, Conv::Number),
    scalar("connected_clients", &CONNECTED_CLIENTS, Conv::Number),
    scalar("blocked_clients", &BLOCKED_CLIENTS, Conv::Number),
    scalar("tracking_clients", &TRACKING_CLIENTS, Conv::Number),
    scalar("clients_in_timeout_table", &CLIENTS_IN_TIMEOUT_TABLE, Conv::Number),
    scalar("pubsub_clients", &PUBSUB_CLIENTS, Conv::Number),
    scalar("cluster_connections", &CLUSTER_CONNECTIONS, Conv::Number),
    // INFO maxclients / maxmemory are the same server variables CONFIG GET
    // returns, and INFO is always available (CONFIG is often renamed or
    // ACL-denied on managed Redis), so INFO is the single source.
    scalar("maxclients", &MAX_CLIENTS, Conv::Number),
    scalar("maxclients", &CONFIG_MAXCLIENTS, Conv::Number),
    scalar("client_recent_max_input_buffer", &CLIENT_RECENT_MAX_INPUT_BUFFER, Conv::Number),
    scalar("client_recent_max_output_buffer", &CLIENT_RECENT_MAX_OUTPUT_BUFFER, Conv::Number),
    scalar("used_memory", &MEMORY_USED, Conv::Number),
    scalar("used_memory_rss", &MEMORY_USED_RSS, Conv::Number),
    scalar("used_memory_peak", &MEMORY_USED_PEAK, Conv::Number),
    scalar("used_memory_overhead", &MEMORY_USED_OVERHEAD, Conv::Number),
    scalar("used_memory_startup", &MEMORY_USED_STARTUP, Conv::Number),
    scalar("used_memory_dataset", &MEMORY_USED_DATASET, Conv::Number),
    scalar("used_memory_lua", &MEMORY_USED_LUA, Conv::Number),
    scalar("used_memory_scripts", &MEMORY_USED_SCRIPTS, Conv::Number),
    scalar("maxmemory", &MEMORY_MAX, Conv::Number),
    scalar("maxmemory", &CONFIG_MAXMEMORY, Conv::Number),
    scalar("total_system_memory", &TOTAL_SYSTEM_MEMORY, Conv::Number),
    scalar("mem_fragmentation_ratio", &MEM_FRAGMENTATION_RATIO, Conv::Number),
    scalar("mem_fragmentation_bytes", &MEM_FRAGMENTATION, Conv::Number),
    scalar("allocator_allocated", &ALLOCATOR_ALLOCATED, Conv::Number),
    scalar("allocator_active", &ALLOCATOR_ACTIVE, Conv::Number),
    scalar("allocator_resident", &ALLOCATOR_RESIDENT, Conv::Number),
    scalar("allocator_frag_ratio", &ALLOCATOR_FRAG_RATIO, Conv::Number),
    scalar("allocator_rss_ratio", &ALLOCATOR_RSS_RATIO, Conv::Number),
    scalar("allocator_frag_bytes", &ALLOCATOR_FRAG_BYTES, Conv::Number),
    scalar("allocator_rss_bytes", &ALLOCATOR_RSS_BYTES, Conv::Number),
    scalar("mem_not_counted_for_evict", &MEM_NOT_COUNTED_FOR_EVICT, Conv::Number),
    scalar("mem_total_replication_buffers", &MEM_TOTAL_REPLICATION_BUFFERS, Conv::Number),
    scalar("mem_clients_slaves", &MEM_CLIENTS_SLAVES, Conv::Number),
    scalar("mem_clients_normal", &MEM_CLIENTS_NORMAL, Conv::Number),
    scalar("lazyfree_pending_objects", &LAZYFREE_PENDING_OBJECTS, Conv::Number),
    scalar("active_defrag_running", &ACTIVE_DEFRAG_RUNNING, Conv::Number),
    scalar("loading", &LOADING, Conv::Number),
    scalar("async_loading", &ASYNC_LOADING, Conv::Number),
    scalar("loading_loaded_perc", &LOADING_PROGRESS, Conv::PercentToRatio),
    scalar("loading_eta_seconds", &LOADING_ETA, Conv::SecondsNonNegative),
    scalar("current_cow_size", &CURRENT_COW_SIZE, Conv::Number),
    scalar("current_fork_perc", &CURRENT_FORK_PROGRESS, Conv::PercentToRatio),
    scalar("rdb_changes_since_last_save", &RDB_CHANGES_SINCE_LAST_SAVE, Conv::Number),
    scalar("rdb_bgsave_in_progress", &RDB_BGSAVE_IN_PROGRESS, Conv::Number),
    scalar("rdb_last_save_time", &RDB_LAST_SAVE_TIMESTAMP, Conv::Number),
    scalar("rdb_last_bgsave_status", &RDB_LAST_BGSAVE_STATUS, Conv::Status),
    scalar("rdb_last_bgsave_time_sec", &RDB_LAST_BGSAVE_DURATION, Conv::SecondsNonNegative),
    scalar("rdb_current_bgsave_time_sec", &RDB_CURRENT_BGSAVE_DURATION, Conv::SecondsNonNegative),
    scalar("rdb_saves", &RDB_SAVES, Conv::Number),
    scalar("rdb_last_cow_size", &RDB_LAST_COW_SIZE, Conv::Number),
    scalar("aof_enabled", &AOF_ENABLED, Conv::Number),
    scalar("aof_rewrite_in_progress", &AOF_REWRITE_IN_PROGRESS, Conv::Number),
    scalar("aof_rewrite_scheduled", &AOF_REWRITE_SCHEDULED, Conv::Number),
    scalar("aof_last_rewrite_time_sec", &AOF_LAST_REWRITE_DURATION, Conv::SecondsNonNegative),
    scalar("aof_current_rewrite_time_sec", &AOF_CURRENT_REWRITE_DURATION, Conv::SecondsNonNegative),
    scalar("aof_last_bgrewrite_status", &AOF_LAST_BGREWRITE_STATUS, Conv::Status),
    scalar("aof_last_write_status", &AOF_LAST_WRITE_STATUS, Conv::Status),
    scalar("aof_rewrites", &AOF_REWRITES, Conv::Number),
    scalar("aof_last_cow_size", &AOF_LAST_COW_SIZE, Conv::Number),
    scalar("aof_current_size", &AOF_CURRENT_SIZE, Conv::Number),
    scalar("aof_base_size", &AOF_BASE_SIZE, Conv::Number),
    scalar("total_connections_received", &CONNECTIONS_RECEIVED, Conv::Number),
    scalar("total_commands_processed", &COMMANDS_PROCESSED, Conv::Number),
    scalar("rejected_connections", &REJECTED_CONNECTIONS, Conv::Number),
    scalar("total_net_input_bytes", &NET_INPUT, Conv::Number),
    scalar("total_net_output_bytes", &NET_OUTPUT, Conv::Number),
    scalar("total_net_repl_input_bytes", &NET_REPL_INPUT, Conv::Number),
    scalar("total_net_repl_output_bytes", &NET_REPL_OUTPUT, Conv::Number),
    scalar("expired_keys", &EXPIRED_KEYS, Conv::Number),
    scalar("expired_stale_perc", &EXPIRED_STALE_RATIO, Conv::PercentToRatio),
    scalar("expired_time_cap_reached_count", &EXPIRED_TIME_CAP_REACHED, Conv::Number),
    scalar("expire_cycle_cpu_milliseconds", &EXPIRE_CYCLE_CPU, Conv::MillisToSeconds),
    scalar("evicted_keys", &EVICTED_KEYS, Conv::Number),
    scalar("evicted_clients", &EVICTED_CLIENTS, Conv::Number),
    scalar("total_eviction_exceeded_time", &EVICTION_EXCEEDED_TIME, Conv::MillisToSeconds),
    scalar("keyspace_hits", &KEYSPACE_HITS, Conv::Number),
    scalar("keyspace_misses", &KEYSPACE_MISSES, Conv::Number),
    scalar("pubsub_channels", &PUBSUB_CHANNELS, Conv::Number),
    scalar("pubsub_patterns", &PUBSUB_PATTERNS, Conv::Number),
    scalar("pubsubshard_channels", &PUBSUBSHARD_CHANNELS, Conv::Number),
    scalar("latest_fork_usec", &LATEST_FORK, Conv::MicrosToSeconds),
    scalar("total_forks", &FORKS, Conv::Number),
    scalar("sync_full", &REPLICA_RESYNCS_FULL, Conv::Number),
    scalar("sync_partial_ok", &REPLICA_PARTIAL_RESYNC_ACCEPTED, Conv::Number),
    scalar("sync_partial_err", &REPLICA_PARTIAL_RESYNC_DENIED, Conv::Number),
    scalar("total_error_replies", &ERROR_REPLIES, Conv::Number),
    scalar("unexpected_error_replies", &UNEXPECTED_ERROR_REPLIES, Conv::Number),
    scalar("total_reads_processed", &READS_PROCESSED, Conv::Number),
    scalar("total_writes_processed", &WRITES_PROCESSED, Conv::Number),
    scalar("acl_access_denied_auth", &ACL_DENIED_AUTH, Conv::Number),
    scalar("acl_access_denied_cmd", &ACL_DENIED_CMD, Conv::Number),
    scalar("acl_access_denied_key", &ACL_DENIED_KEY, Conv::Number),
    scalar("acl_access_denied_channel", &ACL_DENIED_CHANNEL, Conv::Number),
    scalar("connected_slaves", &CONNECTED_SLAVES, Conv::Number),
    scalar("min_slaves_good_slaves", &MIN_SLAVES_GOOD_SLAVES, Conv::Number),
    scalar("master_repl_offset", &MASTER_REPL_OFFSET, Conv::Number),
    scalar("repl_backlog_size", &REPLICATION_BACKLOG, Conv::Number),
    scalar("repl_backlog_active", &REPL_BACKLOG_ACTIVE, Conv::Number),
    scalar("repl_backlog_first_byte_offset", &REPL_BACKLOG_FIRST_BYTE_OFFSET, Conv::NonNegative),
    scalar("repl_backlog_histlen", &REPL_BACKLOG_HISTORY, Conv::Number),
    scalar("slave_priority", &SLAVE_PRIORITY, Conv::Number),
    scalar("used_cpu_sys", &CPU_SYS, Conv::Number),
    scalar("used_cpu_user", &CPU_USER, Conv::Number),
    scalar("used_cpu_sys_children", &CPU_SYS_CHILDREN, Conv::Number),
    scalar("used_cpu_user_children", &CPU_USER_CHILDREN, Conv::Number),
    scalar("used_cpu_sys_main_thread", &CPU_SYS_MAIN_THREAD, Conv::Number),
    scalar("used_cpu_user_main_thread", &CPU_USER_MAIN_THREAD, Conv::Number),
    scalar("cluster_enabled", &CLUSTER_ENABLED, Conv::Number),
];

/// Unlabelled `CLUSTER INFO` fields.
static CLUSTER_SCALARS: &[Scalar] = &[
    scalar("cluster_state", &CLUSTER_STATE, Conv::Status),
    scalar("cluster_slots_assigned", &CLUSTER_SLOTS_ASSIGNED, Conv::Number),
    scalar("cluster_slots_ok", &CLUSTER_SLOTS_OK, Conv::Number),
    scalar("cluster_slots_pfail", &CLUSTER_SLOTS_PFAIL, Conv::Number),
    scalar("cluster_slots_fail", &CLUSTER_SLOTS_FAIL, Conv::Number),
    scalar("cluster_known_nodes", &CLUSTER_KNOWN_NODES, Conv::Number),
    scalar("cluster_size", &CLUSTER_SIZE, Conv::Number),
    scalar("cluster_current_epoch", &CLUSTER_CURRENT_EPOCH, Conv::Number),
    scalar("cluster_my_epoch", &CLUSTER_MY_EPOCH, Conv::Number),
    scalar("cluster_stats_messages_sent", &CLUSTER_MESSAGES_SENT, Conv::Number),
    scalar("cluster_stats_messages_received", &CLUSTER_MESSAGES_RECEIVED, Conv::Number),
    // Does not start with `cluster_`: a prefix filter (redis_exporter's) misses it.
    scalar("total_cluster_links_buffer_limit_exceeded", &CLUSTER_LINKS_BUFFER_LIMIT_EXCEEDED, Conv::Number),
];

/// `CONFIG GET` parameters exported as numbers (the rest of the reply is
/// used elsewhere or not at all).
/// Parameters read from the targeted `CONFIG GET`; the client asks for exactly these.
/// `maxclients` is a fallback for servers whose INFO lacks it (before 7.0); when
/// INFO has it, the INFO value was added first and the duplicate is dropped.
pub static CONFIG_NUMBERS: &[(&str, &Desc)] =
    &[("maxclients", &CONFIG_MAXCLIENTS), ("io-threads", &CONFIG_IO_THREADS), ("databases", &CONFIG_DATABASES)];

/// Families with labels or computed values, not driven by the tables above.
static OTHER_DESCS: &[&Desc] = &[
    &UP,
    &START_TIME,
    &INSTANCE_INFO,
    &MASTER_LINK_UP,
    &MASTER_LAST_IO,
    &MASTER_SYNC_IN_PROGRESS,
    &MASTER_LINK_DOWN_SINCE,
    &SLAVE_REPL_OFFSET,
    &SLAVE_INFO,
    &CONNECTED_SLAVE_OFFSET,
    &CONNECTED_SLAVE_LAG,
    &COMMANDS,
    &COMMANDS_DURATION,
    &COMMANDS_REJECTED,
    &COMMANDS_FAILED,
    &ERRORS,
    &LATENCY_PERCENTILES,
    &DB_KEYS,
    &DB_KEYS_EXPIRING,
    &DB_AVG_TTL,
    &DB_KEYS_WITH_EXPIRING_ITEMS,
    &MODULE_INFO,
    &SLOWLOG_LENGTH,
    &SLOWLOG_LAST_ID,
    &SLOWLOG_LAST_TIMESTAMP,
    &LAST_SLOW_EXECUTION_DURATION,
    &LATENCY_SPIKE_LAST,
    &LATENCY_SPIKE_DURATION,
    &LATENCY_SPIKE_MAX_DURATION,
];

/// Every descriptor this module can emit, each once (INFO fields that feed
/// two families, like `maxclients`, contribute both).
pub fn descriptors() -> Vec<&'static Desc> {
    let mut all: Vec<&'static Desc> = Vec::new();
    let tables = INFO_SCALARS.iter().chain(CLUSTER_SCALARS).map(|s| s.desc);
    let config = CONFIG_NUMBERS.iter().map(|(_, d)| *d);
    let tls = super::tls_expiry::descriptors();
    for desc in OTHER_DESCS.iter().copied().chain(tables).chain(config).chain(tls) {
        if !all.iter().any(|d| d.name == desc.name) {
            all.push(desc);
        }
    }
    all
}

/// `redis_up`: always emitted, whether or not the scrape succeeded.
pub fn encode_up(up: bool, out: &mut Exposition) {
    out.add_plain(&UP, up);
}

// ---- cardinality caps -----------------------------------------------------
// Rows a family may emit from one reply: the names come from the server, so a
// hostile or broken one could otherwise mint any number of series (100k
// `cmdstat_` lines made 79,386). Each cap is well above what a real server
// reports: Redis 7.2 has about 240 commands and 170 subcommands (modules add a
// few dozen), tracks at most 128 error prefixes itself (ERRORSTATS_LIMIT),
// lists only non-empty databases (`databases` defaults to 16), and has about
// 20 latency monitor events. Rows past a cap are counted, by family, in
// `tenderly_exporter_series_dropped_total`; the server's own totals
// (`total_commands_processed`, `total_error_replies`, `connected_slaves`)
// are scalars and stay exact.

/// `cmdstat_` lines kept (family `commandstats`).
pub const MAX_COMMANDS: usize = 1024;
/// `latency_percentiles_usec_` lines kept (family `latencystats`).
pub const MAX_LATENCY_COMMANDS: usize = 1024;
/// Percentiles kept per `latency_percentiles_usec_` line (Redis prints 3 by default).
pub const MAX_PERCENTILES: usize = 16;
/// `errorstat_` lines kept (family `errorstats`).
pub const MAX_ERRORS: usize = 128;
/// `dbN` lines kept (family `keyspace`).
pub const MAX_DBS: usize = 1024;
/// `slaveN` lines kept (family `replicas`).
pub const MAX_REPLICAS: usize = 256;
/// `module:` lines kept (family `modules`).
pub const MAX_MODULES: usize = 64;
/// `LATENCY LATEST` rows kept (family `latency_events`).
pub const MAX_LATENCY_EVENTS: usize = 64;

/// Series one encoding left out because a family reached its cap: `(family, series)`,
/// only families that dropped something.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesDropped(pub Vec<(&'static str, u64)>);

impl SeriesDropped {
    fn add(&mut self, family: &'static str, series: u64) {
        if series > 0 {
            self.0.push((family, series));
        }
    }

    /// Series dropped in all families.
    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }
}

/// All target metrics of a successful scrape, and what the cardinality caps left out.
pub fn encode(snapshot: &RedisSnapshot, out: &mut Exposition) -> SeriesDropped {
    let mut dropped = SeriesDropped::default();
    let info = &snapshot.info;
    encode_server(info, out);
    for s in INFO_SCALARS {
        encode_scalar(info, s, out);
    }
    encode_replication(info, out, &mut dropped);
    encode_commands(info, out, &mut dropped);
    encode_keyspace(info, out, &mut dropped);
    encode_modules(info, out, &mut dropped);
    super::tls_expiry::encode(snapshot.tls_certificate_expiry, out);
    if let Some(cluster) = &snapshot.cluster_info {
        for s in CLUSTER_SCALARS {
            encode_scalar(cluster, s, out);
        }
    }
    encode_config(&snapshot.config, out);
    encode_slowlog(snapshot, out);
    encode_latency(snapshot, out, &mut dropped);
    if snapshot.sentinel.is_some() || info.get("redis_mode") == Some("sentinel") {
        dropped.add("sentinel_masters", super::sentinel::encode(info, snapshot.sentinel.as_ref(), out));
    }
    if let Some((histograms, left_out)) = &snapshot.latency_histograms {
        dropped.add("latency_histogram", (*left_out as u64) * (super::latency::MAX_BUCKET as u64 + 4));
        super::latency::encode(histograms, &info.command_stats(), out);
    }
    if let Some(counts) = &snapshot.clients {
        super::clients::encode(counts, snapshot.clients_by_user, out);
    }
    dropped
}

fn number_value(n: Number) -> Value {
    match n {
        Number::Int(v) => Value::Int(v),
        Number::Float(v) => Value::Float(v),
    }
}

/// The sample value for `text` under `conv`, or `None` to emit nothing.
fn convert(text: &str, conv: Conv) -> Option<Value> {
    match conv {
        Conv::Number => parse_number(text).map(number_value),
        Conv::NonNegative | Conv::SecondsNonNegative => {
            parse_number(text).filter(|n| n.as_f64() >= 0.0).map(number_value)
        }
        Conv::MicrosToSeconds => parse_f64(text).filter(|v| *v >= 0.0).map(|v| Value::Float(v / 1e6)),
        Conv::MillisToSeconds => parse_f64(text).filter(|v| *v >= 0.0).map(|v| Value::Float(v / 1e3)),
        Conv::PercentToRatio => parse_percent_ratio(text).map(Value::Float),
        Conv::Status => match text.trim() {
            "ok" => Some(Value::Int(1)),
            "err" | "fail" => Some(Value::Int(0)),
            _ => None,
        },
    }
}

fn encode_scalar(info: &Info, s: &Scalar, out: &mut Exposition) {
    let Some(value) = info.get(s.field).and_then(|text| convert(text, s.conv)) else { return };
    // A counter is never negative: a negative one is a broken or hostile server, not data.
    if s.desc.kind == Kind::Counter && is_negative(&value) {
        return;
    }
    out.add_plain(s.desc, value);
}

fn is_negative(value: &Value) -> bool {
    match value {
        Value::Int(v) => *v < 0,
        Value::Float(v) => *v < 0.0,
        _ => false,
    }
}

fn label(key: &'static str, value: &str) -> Label {
    (key, bounded_label(value))
}

fn encode_server(info: &Info, out: &mut Exposition) {
    // A negative uptime (or clock) is no start time at all.
    if let (Some(now_usec), Some(uptime)) = (info.get_i64("server_time_usec"), info.get_i64("uptime_in_seconds")) {
        if now_usec >= 0 && uptime >= 0 {
            out.add_plain(&START_TIME, now_usec / 1_000_000 - uptime);
        }
    }
    // An info series needs at least the identity fields; a reply without them
    // is not a server INFO and must not produce a row of empty labels.
    if info.get("role").is_none() && info.get("redis_version").is_none() {
        return;
    }
    let field = |name: &str| info.get(name).unwrap_or("");
    // Valkey 8+ prints `server_mode` instead of `redis_mode`.
    let mode = info.get("redis_mode").or_else(|| info.get("server_mode")).unwrap_or("");
    let labels = vec![
        label("role", field("role")),
        label("redis_version", field("redis_version")),
        label("redis_build_id", field("redis_build_id")),
        label("redis_mode", mode),
        label("os", field("os")),
        label("maxmemory_policy", field("maxmemory_policy")),
        label("tcp_port", field("tcp_port")),
        label("run_id", field("run_id")),
        label("process_id", field("process_id")),
        label("master_replid", field("master_replid")),
    ];
    out.add(&INSTANCE_INFO, labels, 1i64);
}

fn encode_replication(info: &Info, out: &mut Exposition, dropped: &mut SeriesDropped) {
    // Replica-side series carry the master's address, as redis_exporter does
    // (alert texts print it). It changes only when the replica is re-pointed.
    if let Some(status) = info.get("master_link_status") {
        let master = || {
            vec![
                label("master_host", info.get("master_host").unwrap_or("")),
                label("master_port", info.get("master_port").unwrap_or("")),
            ]
        };
        out.add(&MASTER_LINK_UP, master(), status == "up");
        // -1 while the first sync runs: no I/O has happened yet, not "1s ago".
        if let Some(v) = info.get("master_last_io_seconds_ago").and_then(|t| convert(t, Conv::NonNegative)) {
            out.add(&MASTER_LAST_IO, master(), v);
        }
        if let Some(v) = info.get("master_sync_in_progress").and_then(|t| convert(t, Conv::Number)) {
            out.add(&MASTER_SYNC_IN_PROGRESS, master(), v);
        }
        // Present only while the link is down; -1 during the first full sync
        // (the link was never up, so there is no "since"). An absent series
        // plus redis_master_link_up == 0 says that without a negative age.
        if let Some(v) = info.get("master_link_down_since_seconds").and_then(|t| convert(t, Conv::SecondsNonNegative)) {
            out.add(&MASTER_LINK_DOWN_SINCE, master(), v);
        }
        if let Some(v) = info.get("slave_repl_offset").and_then(|t| convert(t, Conv::Number)) {
            out.add(&SLAVE_REPL_OFFSET, master(), v);
        }
        let mut labels = master();
        labels.push(label("read_only", info.get("slave_read_only").unwrap_or("")));
        out.add(&SLAVE_INFO, labels, 1i64);
    }
    // One series per replica, identified by address only: redis_exporter's
    // `slave_state` label would start a new series on every online/sync flip.
    let replicas = info.replicas();
    let extra = replicas.iter().skip(MAX_REPLICAS);
    dropped.add("replicas", extra.map(|r| u64::from(r.offset.is_some()) + u64::from(r.lag_seconds.is_some())).sum());
    for replica in replicas.iter().take(MAX_REPLICAS) {
        let port = replica.port.map(|p| p.to_string()).unwrap_or_default();
        let labels = || vec![label("slave_ip", &replica.ip), label("slave_port", &port)];
        if let Some(offset) = replica.offset {
            out.add(&CONNECTED_SLAVE_OFFSET, labels(), offset);
        }
        if let Some(lag) = replica.lag_seconds.filter(|l| *l >= 0) {
            out.add(&CONNECTED_SLAVE_LAG, labels(), lag);
        }
    }
}

fn encode_commands(info: &Info, out: &mut Exposition, dropped: &mut SeriesDropped) {
    let stats = info.command_stats();
    let series = |s: &super::info::CommandStat| {
        [s.calls.is_some(), s.usec.is_some(), s.rejected_calls.is_some(), s.failed_calls.is_some()]
            .iter()
            .filter(|present| **present)
            .count() as u64
    };
    dropped.add("commandstats", stats.iter().skip(MAX_COMMANDS).map(series).sum());
    for stat in stats.iter().take(MAX_COMMANDS) {
        let cmd = || vec![label("cmd", &stat.cmd)];
        if let Some(calls) = stat.calls {
            out.add(&COMMANDS, cmd(), calls);
        }
        if let Some(usec) = stat.usec {
            out.add(&COMMANDS_DURATION, cmd(), usec as f64 / 1e6);
        }
        if let Some(rejected) = stat.rejected_calls {
            out.add(&COMMANDS_REJECTED, cmd(), rejected);
        }
        if let Some(failed) = stat.failed_calls {
            out.add(&COMMANDS_FAILED, cmd(), failed);
        }
    }
    let errors = info.error_stats();
    dropped.add("errorstats", errors.iter().skip(MAX_ERRORS).filter(|e| e.count.is_some()).count() as u64);
    for stat in errors.iter().take(MAX_ERRORS) {
        if let Some(count) = stat.count {
            out.add(&ERRORS, vec![label("err", &stat.error)], count);
        }
    }
    let lines = info.latency_percentiles();
    let mut extra: u64 = lines.iter().skip(MAX_LATENCY_COMMANDS).map(|l| l.percentiles.len() as u64).sum();
    for line in lines.iter().take(MAX_LATENCY_COMMANDS) {
        extra += line.percentiles.len().saturating_sub(MAX_PERCENTILES) as u64;
        let mut quantiles: Vec<(f64, f64)> = line
            .percentiles
            .iter()
            .take(MAX_PERCENTILES)
            .filter_map(|(percentile, usec)| {
                let quantile = quantile_of(percentile)?;
                Some((quantile, usec / 1e6))
            })
            .collect();
        if quantiles.is_empty() {
            continue;
        }
        quantiles.sort_by(|a, b| a.0.total_cmp(&b.0));
        let stat = stats.iter().find(|s| s.cmd == line.cmd);
        let value = Value::Summary {
            sum: stat.and_then(|s| s.usec).map(|usec| usec as f64 / 1e6),
            count: stat.and_then(|s| s.calls),
            quantiles,
        };
        out.add(&LATENCY_PERCENTILES, vec![label("cmd", &line.cmd)], value);
    }
    dropped.add("latencystats", extra);
}

/// A percentile as Redis prints it as a quantile: the server's default
/// percentiles without building strings, anything else through
/// [`percentile_to_quantile`].
fn quantile_of(p: &str) -> Option<f64> {
    match p {
        "50" => Some(0.5),
        "99" => Some(0.99),
        "99.9" => Some(0.999),
        _ => percentile_to_quantile(p)?.parse().ok(),
    }
}

/// `"99.9"` (a percentile as Redis prints it) to `"0.999"` (a quantile), by
/// moving the decimal point in the text: dividing the float by 100 would
/// print `0.9990000000000001` for some inputs.
fn percentile_to_quantile(p: &str) -> Option<String> {
    const MAX_LEN: usize = 16;
    let (int, frac) = p.split_once('.').unwrap_or((p, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if p.len() > MAX_LEN || (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let (int_part, frac_part) = match int.len().checked_sub(2) {
        Some(point) => (digits[..point].to_owned(), digits[point..].to_owned()),
        None => (String::new(), format!("{}{}", "0".repeat(2 - int.len()), digits)),
    };
    let int_part = int_part.trim_start_matches('0');
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    let frac_part = frac_part.trim_end_matches('0');
    Some(if frac_part.is_empty() { int_part.to_owned() } else { format!("{int_part}.{frac_part}") })
}

fn encode_keyspace(info: &Info, out: &mut Exposition, dropped: &mut SeriesDropped) {
    let dbs = info.keyspace();
    let series = |db: &super::info::KeyspaceDb| {
        [db.keys.is_some(), db.expires.is_some(), db.avg_ttl_ms.is_some(), db.keys_with_expiring_items.is_some()]
            .iter()
            .filter(|present| **present)
            .count() as u64
    };
    dropped.add("keyspace", dbs.iter().skip(MAX_DBS).map(series).sum());
    for db in dbs.iter().take(MAX_DBS) {
        let labels = || vec![label("db", &db.db)];
        if let Some(keys) = db.keys {
            out.add(&DB_KEYS, labels(), keys);
        }
        if let Some(expires) = db.expires {
            out.add(&DB_KEYS_EXPIRING, labels(), expires);
        }
        if let Some(ttl_ms) = db.avg_ttl_ms {
            out.add(&DB_AVG_TTL, labels(), ttl_ms as f64 / 1e3);
        }
        if let Some(n) = db.keys_with_expiring_items {
            out.add(&DB_KEYS_WITH_EXPIRING_ITEMS, labels(), n);
        }
    }
}

fn encode_modules(info: &Info, out: &mut Exposition, dropped: &mut SeriesDropped) {
    let modules: Vec<_> = info.modules().into_iter().filter(|m| !m.name.is_empty()).collect();
    dropped.add("modules", modules.len().saturating_sub(MAX_MODULES) as u64);
    for module in modules.iter().take(MAX_MODULES) {
        let labels = vec![label("name", &module.name), label("ver", &module.ver)];
        out.add(&MODULE_INFO, labels, 1i64);
    }
}

fn encode_config(config: &[(String, String)], out: &mut Exposition) {
    for (param, desc) in CONFIG_NUMBERS {
        let value = config.iter().find(|(k, _)| k.eq_ignore_ascii_case(param)).and_then(|(_, v)| parse_number(v));
        if let Some(value) = value {
            out.add_plain(desc, number_value(value));
        }
    }
}

fn encode_slowlog(snapshot: &RedisSnapshot, out: &mut Exposition) {
    let Some(slowlog) = &snapshot.slowlog else { return };
    out.add_plain(&SLOWLOG_LENGTH, slowlog.length);
    if let Some(id) = slowlog.last_id {
        out.add_plain(&SLOWLOG_LAST_ID, id);
    }
    if let Some(ts) = slowlog.last_timestamp {
        out.add_plain(&SLOWLOG_LAST_TIMESTAMP, ts);
    }
    if let Some(micros) = slowlog.last_duration_micros {
        out.add_plain(&LAST_SLOW_EXECUTION_DURATION, micros as f64 / 1e6);
    }
}

fn encode_latency(snapshot: &RedisSnapshot, out: &mut Exposition, dropped: &mut SeriesDropped) {
    let Some(events) = &snapshot.latency else { return };
    dropped.add("latency_events", 3 * events.len().saturating_sub(MAX_LATENCY_EVENTS) as u64);
    for event in events.iter().take(MAX_LATENCY_EVENTS) {
        let labels = || vec![label("event_name", &event.event)];
        out.add(&LATENCY_SPIKE_LAST, labels(), event.timestamp);
        out.add(&LATENCY_SPIKE_DURATION, labels(), event.latest_ms as f64 / 1e3);
        out.add(&LATENCY_SPIKE_MAX_DURATION, labels(), event.max_ms as f64 / 1e3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::redis::info::parse_info;

    #[test]
    fn quantiles_from_percentile_text() {
        assert_eq!(percentile_to_quantile("50").as_deref(), Some("0.5"));
        assert_eq!(percentile_to_quantile("99").as_deref(), Some("0.99"));
        assert_eq!(percentile_to_quantile("99.9").as_deref(), Some("0.999"));
        assert_eq!(percentile_to_quantile("99.99").as_deref(), Some("0.9999"));
        assert_eq!(percentile_to_quantile("100").as_deref(), Some("1"));
        assert_eq!(percentile_to_quantile("5").as_deref(), Some("0.05"));
        assert_eq!(percentile_to_quantile("0").as_deref(), Some("0"));
        assert_eq!(percentile_to_quantile("").as_deref(), None);
        assert_eq!(percentile_to_quantile("x9").as_deref(), None);
        assert_eq!(percentile_to_quantile("9.9.9").as_deref(), None);
    }

    #[test]
    fn sentinels_are_not_exported_as_negative_durations() {
        let info = parse_info(
            b"role:slave\r\nmaster_host:10.0.0.1\r\nmaster_port:6379\r\nmaster_link_status:down\r\n\
              master_last_io_seconds_ago:-1\r\nmaster_link_down_since_seconds:-1\r\nrdb_last_bgsave_time_sec:-1\r\n",
        );
        let mut out = Exposition::new();
        encode(&RedisSnapshot { info, ..RedisSnapshot::default() }, &mut out);
        assert_eq!(out.get("redis_master_link_up", &[("master_host", "10.0.0.1")]), Some(&Value::Int(0)));
        assert_eq!(out.sample_count("redis_master_last_io_seconds_ago"), 0);
        assert_eq!(out.sample_count("redis_master_link_down_since_seconds"), 0);
        assert_eq!(out.sample_count("redis_rdb_last_bgsave_duration_seconds"), 0);
    }

    #[test]
    fn link_down_age_is_exported_once_known() {
        let info = parse_info(b"role:slave\nmaster_link_status:down\nmaster_link_down_since_seconds:42\n");
        let mut out = Exposition::new();
        encode(&RedisSnapshot { info, ..RedisSnapshot::default() }, &mut out);
        assert_eq!(out.get("redis_master_link_down_since_seconds", &[]), Some(&Value::Int(42)));
    }

    #[test]
    fn status_and_percent_conversions() {
        assert_eq!(convert("ok", Conv::Status), Some(Value::Int(1)));
        assert_eq!(convert("err", Conv::Status), Some(Value::Int(0)));
        assert_eq!(convert("weird", Conv::Status), None);
        assert_eq!(convert("100.11%", Conv::PercentToRatio), Some(Value::Float(1.0011)));
        assert_eq!(convert("444", Conv::MicrosToSeconds), Some(Value::Float(0.000444)));
        assert_eq!(convert("-1", Conv::SecondsNonNegative), None);
    }

    #[test]
    fn empty_info_emits_no_instance_info() {
        let mut out = Exposition::new();
        encode(&RedisSnapshot::default(), &mut out);
        assert_eq!(out.sample_count("redis_instance_info"), 0);
    }
}
