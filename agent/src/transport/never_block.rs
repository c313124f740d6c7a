//! Addresses the blocklist must never take. Blocking the NATS server would
//! cut the agent off for good: the `unblock_ip` that could undo it could
//! never arrive, and the block survives restarts. Blocking a gateway or the
//! host's own address cuts the host off from its network. So `block_ip` is
//! refused (`invalid_argument`) for:
//!
//! - the NATS servers: every host of the agent's NATS URL, resolved when the
//!   command arrives (so a DNS change is followed), and the cluster's other
//!   servers the connection was told about;
//! - every gateway in the routing tables (`/proc/net/route`, `/proc/net/ipv6_route`);
//! - the host's own addresses (every interface);
//! - the networks configured in `never_block`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

/// How long resolving the NATS hosts may take before the check goes on without them.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// The never-block set's sources, consulted when a block is asked for.
#[derive(Debug, Clone)]
pub struct NeverBlock {
    nats_url: String,
    configured: Vec<IpNet>,
    proc_root: PathBuf,
    client: Option<async_nats::Client>,
}

impl NeverBlock {
    pub fn new(nats_url: &str, configured: Vec<IpNet>, proc_root: &Path) -> Self {
        NeverBlock { nats_url: nats_url.to_string(), configured, proc_root: proc_root.to_path_buf(), client: None }
    }

    /// Also protects the servers `client` learns of (a cluster's other members).
    pub fn with_client(mut self, client: async_nats::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Why `ip` must not be blocked, when it must not.
    pub async fn refusal(&self, ip: IpAddr) -> Option<String> {
        if let Some(net) = self.configured.iter().find(|n| n.contains(&ip)) {
            return Some(format!("{ip} is in {net}, which this agent's never_block setting protects"));
        }
        if let Some(host) = self.nats_server_at(ip).await {
            return Some(format!("{ip} is the NATS server {host}: blocking it would cut this agent off for good"));
        }
        if gateways(&self.proc_root).contains(&ip) {
            return Some(format!("{ip} is a gateway of this host"));
        }
        if let Some(iface) = own_interface(ip) {
            return Some(format!("{ip} is this host's own address (on {iface})"));
        }
        None
    }

    async fn nats_server_at(&self, ip: IpAddr) -> Option<String> {
        let mut authorities: Vec<String> = self.nats_url.split(',').filter_map(authority).collect();
        if let Some(client) = &self.client {
            let info = client.server_info();
            authorities.extend(info.connect_urls.iter().filter_map(|u| authority(u)));
        }
        for host in authorities {
            let resolved = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(host.clone())).await;
            match resolved {
                Ok(Ok(addrs)) => {
                    if addrs.into_iter().any(|a| a.ip() == ip) {
                        return Some(host);
                    }
                }
                // An unresolvable server is still protected by name where it is an address.
                _ => tracing::warn!(%host, "cannot resolve a NATS server while checking a block"),
            }
        }
        None
    }
}

/// `host:port` of a NATS URL (`nats://user:pw@host:4222`, `tls://[::1]`, `host`).
fn authority(url: &str) -> Option<String> {
    let url = url.trim();
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split('/').next().unwrap_or_default();
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    if host_port.is_empty() {
        return None;
    }
    let has_port = match host_port.strip_prefix('[') {
        Some(v6) => v6.contains("]:"),
        None => host_port.contains(':'),
    };
    Some(if has_port { host_port.to_string() } else { format!("{host_port}:4222") })
}

/// Every next hop in the IPv4 and IPv6 routing tables.
fn gateways(proc_root: &Path) -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Ok(text) = std::fs::read_to_string(proc_root.join("net/route")) {
        for line in text.lines().skip(1) {
            let gw = line.split_whitespace().nth(2).and_then(|h| u32::from_str_radix(h, 16).ok());
            if let Some(gw) = gw.filter(|g| *g != 0) {
                // The kernel prints the address in host (little-endian) byte order.
                out.push(IpAddr::V4(Ipv4Addr::from(gw.to_le_bytes())));
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(proc_root.join("net/ipv6_route")) {
        for line in text.lines() {
            let hop = line.split_whitespace().nth(4).and_then(|h| u128::from_str_radix(h, 16).ok());
            if let Some(hop) = hop.filter(|h| *h != 0) {
                out.push(IpAddr::V6(Ipv6Addr::from(hop)));
            }
        }
    }
    out
}

/// The interface holding `ip`, when the host holds it.
fn own_interface(ip: IpAddr) -> Option<String> {
    let interfaces = if_addrs::get_if_addrs().ok()?;
    interfaces.into_iter().find(|i| i.ip() == ip).map(|i| i.name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nats_urls_name_their_servers() {
        assert_eq!(authority("nats://alice:pw@10.1.2.3:4333").as_deref(), Some("10.1.2.3:4333"));
        assert_eq!(authority("tls://nats.example").as_deref(), Some("nats.example:4222"));
        assert_eq!(authority("[::1]:4222").as_deref(), Some("[::1]:4222"));
        assert_eq!(authority("nats://[2001:db8::1]").as_deref(), Some("[2001:db8::1]:4222"));
    }

    #[test]
    fn gateways_come_from_the_routing_tables() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("net")).unwrap();
        // Real /proc/net/route lines: default via 172.17.0.1 on eth0.
        std::fs::write(
            root.path().join("net/route"),
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
             eth0\t00000000\t010011AC\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
             eth0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n",
        )
        .unwrap();
        std::fs::write(
            root.path().join("net/ipv6_route"),
            "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n",
        )
        .unwrap();
        let found = gateways(root.path());
        assert_eq!(found, vec!["172.17.0.1".parse::<IpAddr>().unwrap(), "fe80::1".parse().unwrap()]);
    }

    #[tokio::test]
    async fn the_nats_server_own_addresses_and_configured_networks_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let guard = NeverBlock::new(
            "nats://localhost:4222,nats://192.0.2.10:4222",
            vec!["10.0.0.0/8".parse().unwrap()],
            root.path(),
        );
        let why = guard.refusal("192.0.2.10".parse().unwrap()).await.unwrap();
        assert!(why.contains("NATS server"), "{why}");
        assert!(guard.refusal("10.9.8.7".parse().unwrap()).await.unwrap().contains("never_block"));
        let own = if_addrs::get_if_addrs().unwrap().into_iter().find(|i| !i.is_loopback()).map(|i| i.ip());
        if let Some(own) = own {
            assert!(guard.refusal(own).await.unwrap().contains("own address"));
        }
        assert_eq!(guard.refusal("203.0.113.9".parse().unwrap()).await, None);
    }
}
