//! Who holds the connections: `redis_connected_clients_by_name{client_name}`
//! (and, opt-in, `redis_connected_clients_by_user{user}`) from `CLIENT LIST`.
//!
//! `CLIENT LIST` is O(clients) on the server and its reply is about 300 bytes
//! per client, so it runs at most once per [`ClientListOptions::interval`]
//! (the last counts are served in between), on its own short-lived connection
//! whose reply budget is [`ClientListOptions::max_reply_bytes`]: a server with
//! more clients than that loses these two families, never the main scrape.
//!
//! Labels stay bounded whatever the clients call themselves: the
//! [`ClientListOptions::top_n`] largest names keep their label, every other
//! named client is summed into `other`, unnamed clients into `""`. Addresses,
//! client ids and anything else of a `CLIENT LIST` line are never labels.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use super::info::bounded_label;
use crate::metrics::{Desc, Exposition, Label};

/// The catalog name of these families (they are read in the `redis` collector's run).
pub const COLLECTOR: &str = "redis_clients";
/// Label value of the names beyond the top N.
pub const OTHER: &str = "other";
/// Longest client name kept as a label; longer ones are cut.
pub const MAX_NAME_BYTES: usize = 64;
/// Distinct names counted per `CLIENT LIST` before the rest go straight to `other`
/// (bounds the exporter's memory for a server whose clients all have unique names).
const MAX_DISTINCT: usize = 10_000;

const BY_NAME: Desc = Desc::gauge(
    "redis_connected_clients_by_name",
    "Client connections per CLIENT SETNAME name: the largest names keep their label, the rest are summed into other, unnamed clients into the empty name (CLIENT LIST, at most once per interval).",
)
.labels(&["client_name"]);
const BY_USER: Desc = Desc::gauge(
    "redis_connected_clients_by_user",
    "Client connections per ACL user, the largest users keeping their label and the rest summed into other (CLIENT LIST, opt-in).",
)
.labels(&["user"]);

/// Every descriptor this module can emit.
pub fn descriptors() -> Vec<&'static Desc> {
    vec![&BY_NAME, &BY_USER]
}

/// How `CLIENT LIST` is run and bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientListOptions {
    /// Names (and users) that keep their own label.
    pub top_n: usize,
    /// Shortest time between two `CLIENT LIST` calls.
    pub interval: Duration,
    /// Reply budget of the `CLIENT LIST` connection.
    pub max_reply_bytes: usize,
}

impl Default for ClientListOptions {
    fn default() -> Self {
        ClientListOptions { top_n: 10, interval: Duration::from_secs(60), max_reply_bytes: 4 * 1024 * 1024 }
    }
}

/// Connections per name and per user from one `CLIENT LIST`, already bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCounts {
    pub by_name: Vec<(String, u64)>,
    pub by_user: Vec<(String, u64)>,
}

/// A name as a label: control characters replaced, then cut to
/// [`MAX_NAME_BYTES`] (replacing first: U+FFFD is longer than what it replaces).
fn sanitize(name: &str) -> String {
    let clean = bounded_label(name);
    let mut end = clean.len().min(MAX_NAME_BYTES);
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    clean[..end].to_string()
}

/// Counts per name and per user in a `CLIENT LIST` reply, each reduced to the
/// `top_n` largest plus `other` (and `""` for unnamed clients).
pub fn parse_client_list(text: &str, top_n: usize) -> ClientCounts {
    parse_client_list_excluding(text, None, top_n)
}

/// [`parse_client_list`] without the connection whose id is `own_id` (the
/// exporter's own), and without replication links (flags `S` and `M`), which
/// `connected_clients` does not count either.
pub fn parse_client_list_excluding(text: &str, own_id: Option<i64>, top_n: usize) -> ClientCounts {
    let own = own_id.map(|id| format!("id={id}"));
    let mut names: HashMap<String, u64> = HashMap::new();
    let mut users: HashMap<String, u64> = HashMap::new();
    let mut names_overflow = 0u64;
    let mut users_overflow = 0u64;
    for line in text.lines() {
        if !line.starts_with("id=") {
            continue;
        }
        let mut name = "";
        let mut user = None;
        let mut skip = false;
        for (i, part) in line.split(' ').enumerate() {
            if i == 0 && own.as_deref() == Some(part) {
                skip = true;
            } else if let Some(v) = part.strip_prefix("name=") {
                name = v;
            } else if let Some(v) = part.strip_prefix("user=") {
                user = Some(v);
            } else if let Some(flags) = part.strip_prefix("flags=") {
                skip |= flags.contains('S') || flags.contains('M');
            }
        }
        if skip {
            continue;
        }
        count(&mut names, &mut names_overflow, name);
        if let Some(user) = user {
            count(&mut users, &mut users_overflow, user);
        }
    }
    ClientCounts { by_name: top(names, names_overflow, top_n), by_user: top(users, users_overflow, top_n) }
}

fn count(map: &mut HashMap<String, u64>, overflow: &mut u64, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n += 1;
    } else if map.len() < MAX_DISTINCT {
        map.insert(key.to_string(), 1);
    } else {
        *overflow += 1;
    }
}

/// The `top_n` largest named entries (ties by name, so the choice is stable),
/// the rest summed into [`OTHER`]; the unnamed entry `""` is always kept.
fn top(map: HashMap<String, u64>, overflow: u64, top_n: usize) -> Vec<(String, u64)> {
    let unnamed = map.get("").copied();
    let mut named: Vec<(String, u64)> = map.into_iter().filter(|(k, _)| !k.is_empty()).collect();
    named.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut out: Vec<(String, u64)> = Vec::new();
    let mut other = overflow;
    for (name, n) in named {
        let label = sanitize(&name);
        // A real client named "other" (or two names equal once cut) joins the same series.
        if out.len() < top_n && label != OTHER && !out.iter().any(|(l, _)| *l == label) {
            out.push((label, n));
        } else {
            other += n;
        }
    }
    if other > 0 {
        out.push((OTHER.to_string(), other));
    }
    if let Some(n) = unnamed {
        out.push((String::new(), n));
    }
    out
}

/// The two families; `by_user` only when asked for.
pub fn encode(counts: &ClientCounts, by_user: bool, out: &mut Exposition) {
    let label = |key: &'static str, v: &str| -> Vec<Label> { vec![(key, Cow::Owned(v.to_string()))] };
    for (name, n) in &counts.by_name {
        out.add(&BY_NAME, label("client_name", name), *n);
    }
    if by_user {
        for (user, n) in &counts.by_user {
            out.add(&BY_USER, label("user", user), *n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: u32, name: &str, user: &str) -> String {
        format!(
            "id={id} addr=192.0.2.{id}:5{id} laddr=127.0.0.1:6379 fd=8 name={name} age=1 idle=0 flags=N db=0 cmd=get user={user} resp=2\n"
        )
    }

    #[test]
    fn names_are_counted_topped_and_never_addresses() {
        let mut text = String::new();
        for i in 0..3 {
            text += &line(i, "tenderly-api", "api");
        }
        for i in 3..5 {
            text += &line(i, "tenderly-worker", "worker");
        }
        text += &line(5, "", "default");
        text += &line(6, "one-off", "default");
        let counts = parse_client_list(&text, 2);
        assert_eq!(
            counts.by_name,
            vec![
                ("tenderly-api".to_string(), 3),
                ("tenderly-worker".to_string(), 2),
                ("other".to_string(), 1),
                (String::new(), 1)
            ]
        );
        assert_eq!(counts.by_user[0], ("api".to_string(), 3));
        let mut out = Exposition::new();
        encode(&counts, false, &mut out);
        let rendered = out.render().expect("render");
        assert!(!rendered.contains("192.0.2") && !rendered.contains("id="), "{rendered}");
        assert!(!rendered.contains("redis_connected_clients_by_user{"), "by-user is opt-in");
    }

    #[test]
    fn hostile_names_are_bounded() {
        let long = "x".repeat(5_000);
        let mut text = line(1, &long, "u") + &line(1, &long, "u");
        for i in 0..20_000 {
            text += &line(2, &format!("n{i}"), "u");
        }
        text += "garbage line\n";
        let counts = parse_client_list(&text, 10);
        assert_eq!(counts.by_name.len(), 11, "top 10 plus other");
        assert!(counts.by_name.iter().all(|(n, _)| n.len() <= MAX_NAME_BYTES));
        assert_eq!(counts.by_name[0], ("x".repeat(MAX_NAME_BYTES), 2), "the largest name, cut");
        assert_eq!(counts.by_name.iter().map(|(_, n)| n).sum::<u64>(), 20_002, "nothing lost");
        let named_other = parse_client_list(&line(1, "other", "u"), 10);
        assert_eq!(named_other.by_name, vec![("other".to_string(), 1)]);
    }

    #[test]
    fn control_characters_do_not_push_a_name_past_the_cap() {
        // Found by tests/it/redis_depth.rs hostile::client_list_and_sentinel_info_never_panic:
        // each replaced control character grows from 1 to 3 bytes.
        let name = "\u{b}".repeat(MAX_NAME_BYTES);
        let counts = parse_client_list(&line(1, &name, "u"), 10);
        assert!(counts.by_name[0].0.len() <= MAX_NAME_BYTES, "{}", counts.by_name[0].0.len());
    }

    #[test]
    fn own_connection_and_replication_links_are_not_counted() {
        let text = line(7, "", "default") + &line(8, "app", "u") + &line(9, "", "u").replace("flags=N", "flags=S");
        let counts = parse_client_list_excluding(&text, Some(7), 10);
        assert_eq!(counts.by_name, vec![("app".to_string(), 1)]);
    }
}
