//! Where webhooks may go (`VIGIL_WEBHOOK_ALLOW`): host names and addresses
//! or CIDRs. A URL's host must be listed (a name, or an address in a listed
//! range); every address a listed name resolves to must be public or in a
//! listed range, so a name that resolves (or is rebound) to loopback, a
//! private network or the cloud metadata address is refused unless that
//! range is listed too. Checked when a hunt is saved, before each delivery,
//! and on the resolved addresses at connect time ([`crate::outbound`]).

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::Url;

/// The parsed allow-list; empty allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Arc<Entries>);

#[derive(Debug, Default, PartialEq, Eq)]
struct Entries {
    /// Exact host names, lowercase, without a trailing dot.
    hosts: Vec<String>,
    /// `*.example.com` as `.example.com`: any name below it.
    suffixes: Vec<String>,
    nets: Vec<IpNet>,
}

/// Why a webhook target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Blocked(pub String);

impl AllowList {
    /// Parses `hooks.example.com, *.corp.example, 10.1.2.3, 10.20.0.0/16, ::1`.
    pub fn parse(spec: &str) -> Result<AllowList, String> {
        let mut e = Entries::default();
        for raw in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Ok(net) = raw.parse::<IpNet>() {
                e.nets.push(net.trunc());
            } else if let Ok(ip) = raw.parse::<IpAddr>() {
                e.nets.push(IpNet::from(canonical(ip)));
            } else if let Some(rest) = raw.strip_prefix("*.") {
                e.suffixes.push(format!(".{}", host_name(rest).ok_or_else(|| bad(raw))?));
            } else {
                e.hosts.push(host_name(raw).ok_or_else(|| bad(raw))?);
            }
        }
        Ok(AllowList(Arc::new(e)))
    }

    pub fn is_empty(&self) -> bool {
        self.0.hosts.is_empty() && self.0.suffixes.is_empty() && self.0.nets.is_empty()
    }

    fn in_nets(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.nets.iter().any(|n| n.contains(&ip))
    }

    fn names(&self, host: &str) -> bool {
        let h = host.trim_end_matches('.').to_ascii_lowercase();
        self.0.hosts.contains(&h) || self.0.suffixes.iter().any(|s| h.ends_with(s.as_str()))
    }

    /// Whether a URL may be called, before any name is resolved: http(s),
    /// and its host a listed name or an address in a listed range.
    pub fn check_url(&self, url: &Url) -> Result<(), Blocked> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Blocked(format!("`{url}` is not an http(s) URL")));
        }
        let ok = match url.host() {
            Some(url::Host::Domain(d)) => self.names(d),
            Some(url::Host::Ipv4(ip)) => self.in_nets(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.in_nets(IpAddr::V6(ip)),
            None => false,
        };
        if ok {
            Ok(())
        } else {
            let host = url.host_str().unwrap_or_default();
            Err(Blocked(format!("webhook host `{host}` is not in VIGIL_WEBHOOK_ALLOW")))
        }
    }

    /// Whether `host` may be reached at `ip` (after resolution): `ip` in a
    /// listed range, or `host` listed and `ip` public.
    pub fn permits(&self, host: &str, ip: IpAddr) -> bool {
        self.in_nets(ip) || (self.names(host) && is_public(ip))
    }
}

fn bad(entry: &str) -> String {
    format!("`{entry}` is not a host name, an IP address or a CIDR (e.g. hooks.example.com, *.example.com, 10.0.0.0/8)")
}

/// A host name as the URL parser normalises it (lowercase, IDNA), or `None`.
fn host_name(s: &str) -> Option<String> {
    // Only a name: no port, path or user (the parser would take `x:80` as `x`).
    if s.contains([':', '/', '?', '#', '@', '*']) {
        return None;
    }
    let url = Url::parse(&format!("http://{s}/")).ok()?;
    match url.host() {
        Some(url::Host::Domain(d)) => Some(d.trim_end_matches('.').to_string()),
        _ => None,
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The special-purpose ranges (IANA's registries): loopback, private,
/// shared (CGNAT), link-local (with the cloud metadata address), documentation,
/// benchmarking, multicast, reserved; and IPv6 ranges that embed an IPv4
/// address (NAT64, 6to4, Teredo). Anything else is public.
const NOT_PUBLIC: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2002::/16",
    "3fff::/20",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

/// Whether `ip` is a globally routable unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    let ip = canonical(ip);
    !NOT_PUBLIC.iter().filter_map(|n| n.parse::<IpNet>().ok()).any(|n| n.contains(&ip))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn an_empty_list_allows_nothing() {
        let a = AllowList::parse(" ").unwrap();
        assert!(a.is_empty());
        assert!(a.check_url(&url("https://hooks.example.com/x")).is_err());
        assert!(!a.permits("hooks.example.com", "93.184.216.34".parse().unwrap()));
    }

    #[test]
    fn names_need_public_addresses_unless_their_range_is_listed() {
        let a = AllowList::parse("Hooks.Example.com, *.corp.example, 10.20.0.0/16").unwrap();
        assert!(a.check_url(&url("https://hooks.example.com./a")).is_ok());
        assert!(a.check_url(&url("https://x.y.corp.example/a")).is_ok());
        assert!(a.check_url(&url("https://corp.example/a")).is_err());
        assert!(a.check_url(&url("https://evil.example.com/a")).is_err());
        assert!(a.check_url(&url("http://10.20.3.4:8080/")).is_ok());
        assert!(a.check_url(&url("http://10.21.3.4/")).is_err());
        // A listed name rebound to loopback or the metadata address is refused.
        assert!(a.permits("hooks.example.com", "93.184.216.34".parse().unwrap()));
        assert!(!a.permits("hooks.example.com", "127.0.0.1".parse().unwrap()));
        assert!(!a.permits("hooks.example.com", "169.254.169.254".parse().unwrap()));
        assert!(!a.permits("hooks.example.com", "::ffff:127.0.0.1".parse().unwrap()));
        assert!(a.permits("x.corp.example", "10.20.0.9".parse().unwrap()));
        // An unlisted name never, whatever it resolves to outside the ranges.
        assert!(!a.permits("other.example", "93.184.216.34".parse().unwrap()));
    }

    #[test]
    fn literal_addresses_in_any_spelling_are_checked() {
        let a = AllowList::parse("hooks.example.com").unwrap();
        for u in
            ["http://127.0.0.1/", "http://2130706433/", "http://0x7f.1/", "http://[::1]/", "http://[::ffff:7f00:1]/"]
        {
            assert!(a.check_url(&url(u)).is_err(), "{u}");
        }
        let a = AllowList::parse("127.0.0.1").unwrap();
        assert!(a.check_url(&url("http://2130706433/")).is_ok());
        assert!(a.check_url(&url("http://[::ffff:127.0.0.1]/")).is_ok());
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in ["http://x/", "x:80", "10.0.0.0/33", "*.", "a b"] {
            assert!(AllowList::parse(bad).unwrap_err().contains(bad), "{bad}");
        }
    }

    #[test]
    fn public_is_what_no_special_range_holds() {
        for ip in ["8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in
            ["10.1.1.1", "172.31.0.1", "192.168.1.1", "100.64.0.1", "169.254.169.254", "::1", "fd00::1", "fe80::1"]
        {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
