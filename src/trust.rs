//! Which addresses a target's credentials may follow.
//!
//! A Redis primary lists its replicas (`INFO replication`, where any client
//! allowed `REPLCONF`/`PSYNC` can register one), a cluster node lists its peers
//! (`CLUSTER NODES`) and a MongoDB node lists its set (`hello.hosts`). All of
//! that is what the server *says*; following it with the target's password
//! would hand the password to whoever can make the server say something. So a
//! discovered member is contacted with the target's credentials only when it
//! matches the target's allow-list ([`MemberAllowList`], `members_allowed:` in
//! the config file) or the hosts the operator wrote for the target (its
//! address, the MongoDB seed list, the SRV name's domain, the key scan's
//! `replica_address`).
//!
//! Some addresses are never contacted, whatever the list says: link-local
//! (169.254.0.0/16, fe80::/10, which hold the cloud metadata services), the
//! known metadata addresses and names (169.254.169.254, fd00:ec2::254,
//! fd20:ce::254, 100.100.100.200, metadata.google.internal, ...), unspecified,
//! broadcast and multicast addresses, and host names that are really numbers
//! (`2852039166` resolves to 169.254.169.254). A name is resolved before use
//! and refused if any address it resolves to is one of those.
//!
//! This module depends on nothing but std and tokio so that every layer (the
//! generic MongoDB client included) can use it. See docs/security-trust-model.md.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use tokio::time::{timeout_at, Instant};

/// Longest time one name resolution may take, whatever the caller's deadline.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);
/// Most entries of each kind in one allow-list (bounds the config and the checks).
pub const MAX_ENTRIES: usize = 256;

/// `host:port`, with brackets around an IPv6 host.
pub fn member_key(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Splits `host:port` (`[v6]:port`) into a host without brackets and a port.
pub fn parse_member(member: &str) -> Option<(String, u16)> {
    let (host, port) = member.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() || port == 0 {
        return None;
    }
    Some((host.to_string(), port))
}

/// Host names that are cloud metadata services, refused even if allowed.
const METADATA_NAMES: [&str; 7] = [
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.azure.internal",
    "metadata.tencentyun.com",
];

/// An IP network (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR/LEN`; host bits must be zero (`10.0.0.1/8` is refused: did
    /// the operator mean the host or the network?).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, len) = text.trim().split_once('/').ok_or_else(|| format!("'{text}' is not ADDRESS/PREFIX"))?;
        let network: IpAddr = addr.parse().map_err(|_| format!("'{text}': '{addr}' is not an IPv4 or IPv6 address"))?;
        let network = canonical(network);
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix: u8 =
            len.parse().ok().filter(|p| *p <= max).ok_or_else(|| format!("'{text}': prefix must be 0 to {max}"))?;
        let cidr = Cidr { network, prefix };
        if !cidr.contains(network) || masked(network, prefix) != network {
            return Err(format!("'{text}' has host bits set; use {}/{prefix}", masked(network, prefix)));
        }
        Ok(cidr)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.network.is_ipv4() && masked(ip, self.prefix) == self.network
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The operator's allow-list of one target (`members_allowed:`), validated.
/// Empty means "only the hosts written in the target's own settings".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberAllowList {
    /// Host names (lower case, no trailing dot) and IP literals, any port.
    pub hosts: Vec<String>,
    pub cidrs: Vec<Cidr>,
    /// DNS suffixes (`redis.internal` matches `a.redis.internal`, not `redis.internal` itself).
    pub dns_suffixes: Vec<String>,
}

/// A field of `members_allowed` and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowListError {
    pub field: String,
    pub problem: String,
    pub fix: &'static str,
}

impl MemberAllowList {
    /// Validates the three lists; errors name the field (`hosts[2]`).
    pub fn parse(hosts: &[String], cidrs: &[String], dns_suffixes: &[String]) -> Result<Self, AllowListError> {
        let err = |field: String, problem: String, fix: &'static str| AllowListError { field, problem, fix };
        for (name, len) in [("hosts", hosts.len()), ("cidrs", cidrs.len()), ("dns_suffixes", dns_suffixes.len())] {
            if len > MAX_ENTRIES {
                return Err(err(name.into(), format!("{len} entries"), "use at most 256 (a CIDR covers many hosts)"));
            }
        }
        let mut out = MemberAllowList::default();
        for (i, host) in hosts.iter().enumerate() {
            let field = format!("hosts[{i}]");
            let normalized = normalize_host(host).ok_or_else(|| {
                err(
                    field.clone(),
                    format!("'{}' is not a host name or IP address", host.escape_debug()),
                    "write a host without port or scheme, e.g. redis-a.internal or 10.0.0.5",
                )
            })?;
            if forbidden_host(&normalized) {
                return Err(err(
                    field,
                    format!("'{normalized}' is link-local or a cloud metadata address"),
                    "these are never contacted; remove it",
                ));
            }
            out.hosts.push(normalized);
        }
        for (i, cidr) in cidrs.iter().enumerate() {
            out.cidrs
                .push(Cidr::parse(cidr).map_err(|p| err(format!("cidrs[{i}]"), p, "use e.g. 10.0.0.0/8 or fd00::/8"))?);
        }
        for (i, suffix) in dns_suffixes.iter().enumerate() {
            let field = format!("dns_suffixes[{i}]");
            let s = suffix.trim().trim_start_matches('.').trim_end_matches('.').to_ascii_lowercase();
            if !is_dns_name(&s) || s.parse::<IpAddr>().is_ok() {
                return Err(err(
                    field,
                    format!("'{}' is not a DNS name", suffix.escape_debug()),
                    "use e.g. redis.internal",
                ));
            }
            if !s.contains('.') {
                return Err(err(
                    field,
                    format!("'{s}' is a single label and would allow a whole top-level domain"),
                    "use at least two labels, e.g. svc.cluster.local",
                ));
            }
            out.dns_suffixes.push(s);
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.cidrs.is_empty() && self.dns_suffixes.is_empty()
    }
}

/// Whether `name` is a syntactically plain DNS name (letters, digits, `-`, `_`, dots).
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A host as compared: IP literals canonical, names lower case without a trailing dot or brackets.
pub fn normalize_host(host: &str) -> Option<String> {
    let host = host.trim();
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(canonical(ip).to_string());
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    is_dns_name(&name).then_some(name)
}

/// Addresses never contacted with a target's credentials, whatever the allow-list says.
pub fn forbidden_ip(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_link_local()
                || v4.is_unspecified()
                || o[0] == 0
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4 == Ipv4Addr::new(100, 100, 100, 200)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            (s[0] & 0xffc0) == 0xfe80
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || v6 == Ipv6Addr::new(0xfd20, 0xce, 0, 0, 0, 0, 0, 0x254)
                // NAT64 (64:ff9b::/96) and IPv4-compatible (::/96) forms of a refused IPv4 address.
                || ((s[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[0..6] == [0; 6])
                    && forbidden_ip(IpAddr::V4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8)))
                    && !v6.is_loopback())
        }
    }
}

/// A normalized host that is refused before any resolution: a refused IP, a
/// metadata name, or a "name" that the resolver would read as a number.
fn forbidden_host(normalized: &str) -> bool {
    if let Ok(ip) = normalized.parse::<IpAddr>() {
        return forbidden_ip(ip);
    }
    if METADATA_NAMES.contains(&normalized) {
        return true;
    }
    // No top-level domain is numeric; `inet_aton` reads `2852039166`, `0xa9fea9fe`
    // and `169.254.43518` as IPv4 addresses.
    let last = normalized.rsplit('.').next().unwrap_or(normalized);
    last.bytes().all(|b| b.is_ascii_digit())
        || (last.starts_with("0x") && last.len() > 2 && last[2..].bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Why a member may or may not get the target's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Matches the allow-list (or the target's own hosts).
    Allowed,
    /// Not on the allow-list.
    NotAllowed,
    /// Link-local, metadata or otherwise never contacted (also when allowed).
    Forbidden,
    /// A name that did not resolve within the deadline: not contacted this time.
    Unresolved,
}

impl Verdict {
    pub fn allowed(self) -> bool {
        self == Verdict::Allowed
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::NotAllowed => "not in members_allowed",
            Verdict::Forbidden => "link-local or metadata address",
            Verdict::Unresolved => "name did not resolve",
        }
    }
}

/// The effective policy of one target: its own hosts plus its allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberPolicy {
    names: Vec<String>,
    ips: Vec<IpAddr>,
    cidrs: Vec<Cidr>,
    suffixes: Vec<String>,
}

impl MemberPolicy {
    /// `own_hosts`: hosts written in the target's settings (seed address,
    /// seed list); `own_suffixes`: the SRV name's domain. Both always trusted.
    pub fn new<'a>(
        list: &MemberAllowList,
        own_hosts: impl IntoIterator<Item = &'a str>,
        own_suffixes: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut policy = MemberPolicy { cidrs: list.cidrs.clone(), ..MemberPolicy::default() };
        for host in own_hosts.into_iter().filter_map(normalize_host).chain(list.hosts.iter().cloned()) {
            match host.parse::<IpAddr>() {
                Ok(ip) if !policy.ips.contains(&ip) => policy.ips.push(ip),
                Ok(_) => {}
                Err(_) if !policy.names.contains(&host) => policy.names.push(host),
                Err(_) => {}
            }
        }
        for suffix in own_suffixes.into_iter().filter_map(normalize_host).chain(list.dns_suffixes.iter().cloned()) {
            if !policy.suffixes.contains(&suffix) {
                policy.suffixes.push(suffix);
            }
        }
        policy
    }

    /// The verdict without DNS: IP literals against the hosts' IPs and the
    /// CIDRs, names against the host names and suffixes. CIDRs never match a
    /// name (the name's owner, possibly the attacker, controls what it resolves to).
    pub fn check_static(&self, host: &str) -> Verdict {
        let Some(host) = normalize_host(host) else { return Verdict::Forbidden };
        if forbidden_host(&host) {
            return Verdict::Forbidden;
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => {
                if self.ips.contains(&ip) || self.cidrs.iter().any(|c| c.contains(ip)) {
                    Verdict::Allowed
                } else {
                    Verdict::NotAllowed
                }
            }
            Err(_) => {
                let by_suffix = self.suffixes.iter().any(|s| {
                    host.len() > s.len() + 1
                        && host.ends_with(s.as_str())
                        && host.as_bytes()[host.len() - s.len() - 1] == b'.'
                });
                if self.names.contains(&host) || by_suffix {
                    Verdict::Allowed
                } else {
                    Verdict::NotAllowed
                }
            }
        }
    }

    /// [`check_static`](Self::check_static), then, for an allowed name, one
    /// resolution (within `deadline` and [`RESOLVE_TIMEOUT`]): refused if any
    /// address it resolves to is refused, or if it does not resolve.
    pub async fn check(&self, host: &str, port: u16, deadline: Instant) -> Verdict {
        let verdict = self.check_static(host);
        let Some(host) = normalize_host(host) else { return Verdict::Forbidden };
        if verdict != Verdict::Allowed || host.parse::<IpAddr>().is_ok() {
            return verdict;
        }
        judge_resolved(resolve(&host, port, deadline).await)
    }

    /// Adds the addresses the policy's host names resolve to, so a member
    /// advertised by IP (`INFO replication` lists IPs) matches a seed given by
    /// name. Refused addresses are not added. Bounded by `deadline`.
    pub async fn resolve_names(&mut self, deadline: Instant) {
        let lookups = self.names.iter().take(32).map(|name| resolve(name, 0, deadline));
        for ips in futures_util::future::join_all(lookups).await.into_iter().flatten() {
            for ip in ips {
                let ip = canonical(ip);
                if !forbidden_ip(ip) && !self.ips.contains(&ip) {
                    self.ips.push(ip);
                }
            }
        }
    }
}

/// The verdict on an allowed name from what it resolved to.
fn judge_resolved(ips: Option<Vec<IpAddr>>) -> Verdict {
    match ips {
        Some(ips) if ips.is_empty() => Verdict::Unresolved,
        Some(ips) if ips.iter().any(|ip| forbidden_ip(*ip)) => Verdict::Forbidden,
        Some(_) => Verdict::Allowed,
        None => Verdict::Unresolved,
    }
}

/// The addresses of `host`, or `None` on failure or timeout.
async fn resolve(host: &str, port: u16, deadline: Instant) -> Option<Vec<IpAddr>> {
    let deadline = deadline.min(Instant::now() + RESOLVE_TIMEOUT);
    match timeout_at(deadline, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(addrs)) => Some(addrs.map(|a| canonical(a.ip())).take(64).collect()),
        _ => None,
    }
}

/// The MongoDB seed hosts and SRV domain of a display string
/// (`mongodb://h1:p1,h2:p2` or `mongodb+srv://name.domain.tld`): the hosts the
/// operator wrote, trusted by default. The SRV name's parent domain is trusted
/// because the driver only accepts SRV answers under it.
pub fn mongo_seed(display: &str) -> (Vec<String>, Vec<String>) {
    if let Some(hosts) = display.strip_prefix("mongodb://") {
        let hosts = hosts
            .split(',')
            .filter_map(|h| {
                let host = match h.rsplit_once(':') {
                    Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(':') => host,
                    _ => h,
                };
                normalize_host(host)
            })
            .collect();
        return (hosts, Vec::new());
    }
    if let Some(name) = display.strip_prefix("mongodb+srv://") {
        let name = name.split(['/', '?']).next().unwrap_or(name);
        let suffix = name.split_once('.').map(|(_, d)| d).filter(|d| d.contains('.'));
        return (Vec::new(), suffix.and_then(normalize_host).into_iter().collect());
    }
    (Vec::new(), Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(hosts: &[&str], cidrs: &[&str], suffixes: &[&str]) -> MemberAllowList {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        MemberAllowList::parse(&s(hosts), &s(cidrs), &s(suffixes)).expect("valid")
    }

    #[test]
    fn default_trusts_only_the_targets_own_hosts() {
        let p = MemberPolicy::new(&MemberAllowList::default(), ["127.0.0.1"], []);
        assert_eq!(p.check_static("127.0.0.1"), Verdict::Allowed);
        assert_eq!(p.check_static("::ffff:127.0.0.1"), Verdict::Allowed);
        assert_eq!(p.check_static("127.0.0.2"), Verdict::NotAllowed);
        assert_eq!(p.check_static("mongo1"), Verdict::NotAllowed);
    }

    #[test]
    fn hosts_cidrs_and_suffixes_match() {
        let p = MemberPolicy::new(
            &list(&["Redis-A.internal.", "10.0.0.5"], &["10.1.0.0/16", "fd00::/8"], &[".svc.cluster.local"]),
            ["seed"],
            [],
        );
        assert_eq!(p.check_static("redis-a.internal"), Verdict::Allowed);
        assert_eq!(p.check_static("10.0.0.5"), Verdict::Allowed);
        assert_eq!(p.check_static("10.1.200.3"), Verdict::Allowed);
        assert_eq!(p.check_static("[fd00::1]"), Verdict::Allowed);
        assert_eq!(p.check_static("r-0.redis.ns.svc.cluster.local"), Verdict::Allowed);
        assert_eq!(p.check_static("evilsvc.cluster.local"), Verdict::NotAllowed);
        assert_eq!(p.check_static("svc.cluster.local"), Verdict::NotAllowed);
        assert_eq!(p.check_static("10.2.0.1"), Verdict::NotAllowed);
        // CIDRs never match names.
        assert_eq!(p.check_static("ten.example"), Verdict::NotAllowed);
    }

    #[test]
    fn link_local_and_metadata_are_refused_even_when_allowed() {
        let p = MemberPolicy::new(&list(&[], &["0.0.0.0/0", "::/0"], &["google.internal"]), [], []);
        for host in [
            "169.254.169.254",
            "169.254.0.1",
            "[fe80::1]",
            "fd00:ec2::254",
            "fd20:ce::254",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "100.100.100.200",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "metadata.google.internal",
            "METADATA.GOOGLE.INTERNAL.",
            "2852039166",
            "0xa9fea9fe",
            "169.254.43518",
            "bad host",
            "",
        ] {
            assert_eq!(p.check_static(host), Verdict::Forbidden, "{host}");
        }
        assert_eq!(p.check_static("10.0.0.1"), Verdict::Allowed);
        assert!(!forbidden_ip("::1".parse().expect("ip")));
    }

    #[test]
    fn allow_list_errors_name_the_field() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        type Case<'a> = (&'a [&'a str], &'a [&'a str], &'a [&'a str], &'a str);
        let cases: [Case; 6] = [
            (&["h:1"], &[], &[], "hosts[0]"),
            (&["ok", "169.254.169.254"], &[], &[], "hosts[1]"),
            (&[], &["10.0.0.1/8"], &[], "cidrs[0]"),
            (&[], &["10.0.0.0/33"], &[], "cidrs[0]"),
            (&[], &[], &["com"], "dns_suffixes[0]"),
            (&[], &[], &["a b.c"], "dns_suffixes[0]"),
        ];
        for (hosts, cidrs, suffixes, field) in cases {
            let e = MemberAllowList::parse(&s(hosts), &s(cidrs), &s(suffixes)).expect_err(field);
            assert_eq!(e.field, field, "{e:?}");
        }
    }

    #[test]
    fn mongo_seed_hosts_and_srv_domain() {
        assert_eq!(mongo_seed("mongodb://a:1,[::1]:2,B"), (vec!["a".into(), "::1".into(), "b".into()], vec![]));
        assert_eq!(mongo_seed("mongodb+srv://cluster0.example.com"), (vec![], vec!["example.com".into()]));
        assert_eq!(mongo_seed("mongodb+srv://example.com"), (vec![], vec![]));
    }

    #[tokio::test]
    async fn names_are_resolved_and_refused_if_any_address_is() {
        let p = MemberPolicy::new(&list(&["localhost"], &[], &[]), [], []);
        let deadline = Instant::now() + Duration::from_secs(2);
        assert_eq!(p.check("localhost", 1, deadline).await, Verdict::Allowed);
        let mut p = MemberPolicy::new(&MemberAllowList::default(), ["localhost"], []);
        assert_eq!(p.check_static("127.0.0.1"), Verdict::NotAllowed);
        p.resolve_names(deadline).await;
        assert_eq!(p.check_static("127.0.0.1"), Verdict::Allowed);
        // A name allowed by suffix that does not resolve is not contacted.
        let p = MemberPolicy::new(&list(&[], &[], &["does-not-exist.invalid"]), [], []);
        assert_eq!(p.check("x.does-not-exist.invalid", 1, deadline).await, Verdict::Unresolved);
        // An allowed name with one link-local address among others is refused.
        let ips = |v: &[&str]| Some(v.iter().map(|x| x.parse().expect("ip")).collect::<Vec<IpAddr>>());
        assert_eq!(judge_resolved(ips(&["10.0.0.1", "169.254.169.254"])), Verdict::Forbidden);
        assert_eq!(judge_resolved(ips(&["fe80::1"])), Verdict::Forbidden);
        assert_eq!(judge_resolved(ips(&["10.0.0.1"])), Verdict::Allowed);
        assert_eq!(judge_resolved(ips(&[])), Verdict::Unresolved);
    }
}
