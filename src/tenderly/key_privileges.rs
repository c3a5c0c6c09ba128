//! What the key-family scan needs from a Redis server, asked once (for
//! `doctor`): `SCAN`, `PTTL` and `MEMORY USAGE`, each sent one time on the
//! server the scan reads (the target, or its `replica_address`). The running
//! exporter learns a refusal only after its first pass has started, then
//! disables the scan until a restart; this says so before that, with the ACL
//! rule that fixes it. Costs the server one round trip of three cheap
//! commands (`SCAN 0 COUNT 1`, and two on a key name that does not exist).

use redis::Value;
use tokio::time::{timeout_at, Instant};

use super::keys::{parse_host_port, KeyFamiliesConfig};
use crate::collectors::redis::client::{classify_connect_error, open_connection, RedisError};
use crate::collectors::redis::RedisOptions;

/// One command of the key scan the server refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// As the scan sends it: `SCAN`, `PTTL`, `MEMORY USAGE`.
    pub command: &'static str,
    /// The ACL rule to add (`ACL SETUSER <user> <rule>`).
    pub grant: &'static str,
}

/// The commands probed, with the rule each needs; a key-permission refusal
/// (`PTTL` and `MEMORY USAGE` read a key) needs read access to the keys too.
const COMMANDS: [(&str, &str, &str); 3] = [
    ("SCAN", "+scan", "+scan"),
    ("PTTL", "+pttl", "+pttl %R~*"),
    ("MEMORY USAGE", "+memory|usage", "+memory|usage %R~*"),
];

/// Sends each command of the key scan once and returns those refused
/// (NOPERM, or unknown because renamed). `Err`: no connection at all.
pub async fn probe(
    spec: &RedisOptions,
    config: &KeyFamiliesConfig,
    deadline: Instant,
) -> Result<Vec<Refusal>, RedisError> {
    let replica = config.replica_address.as_deref().and_then(parse_host_port);
    let mut conn = open_connection(spec, replica.as_ref(), true, deadline).await?;
    let probe_key = format!("{}doctor-privilege-probe", config.namespace);
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    pipe.cmd("SCAN").arg(0).arg("COUNT").arg(1);
    pipe.cmd("PTTL").arg(&probe_key);
    pipe.cmd("MEMORY").arg("USAGE").arg(&probe_key);
    let replies: Vec<Value> = timeout_at(deadline, pipe.query_async(&mut conn))
        .await
        .map_err(|_| RedisError::Timeout("key scan privilege probe"))?
        .map_err(|e| classify_connect_error(&e))?;
    let mut refused = Vec::new();
    for ((command, grant, key_grant), reply) in COMMANDS.iter().zip(&replies) {
        if let Value::ServerError(e) = reply {
            // "No permissions to access a key": the command is allowed, the key is not.
            let on_key = e.details().is_some_and(|d| d.to_ascii_lowercase().contains("to access"));
            refused.push(Refusal { command, grant: if on_key { key_grant } else { grant } });
        }
    }
    Ok(refused)
}
