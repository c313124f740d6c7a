//! The in-memory connection graph: what it stores and how it changes.
//!
//! This module owns [`Graph`] and its inputs ([`EdgeRecord`], [`RiskFacts`]):
//! nodes, flows, the host → IP index and the incremental operations
//! ([`Graph::upsert`], [`Graph::remove_older_than`], the risk setters). The
//! queries over it live in [`crate::query`]; loading rows from PostgreSQL is
//! [`crate::sync`]'s job.
//!
//! # Shape
//!
//! - **Nodes are IP addresses** ([`NodeId`]). A node is labelled with the host
//!   name an edge gives for it (`src_host` for `src_ip`, `dst_host` for
//!   `dst_ip`); when records disagree, the name from the record with the latest
//!   `last_seen` wins (ties: the later upsert), and empty names never replace a
//!   label. Host names are trimmed and compared case-insensitively (ASCII); they
//!   are kept and shown lower-cased. A host may have several IPs; the graph keeps
//!   a host → IPs index so a query can start from a name.
//! - Between two nodes there is **one petgraph edge per direction** (a *link*),
//!   holding every *flow* for that pair: one per `connections` primary key
//!   `(src_process, dst_port, protocol)`, with its cumulative count and bytes and
//!   its first and last seen. Traversal walks links; filters look inside them.
//!   Protocols are lower-cased; process names are kept as reported.
//!
//! # Storage and cost
//!
//! Nodes and links live in a petgraph [`StableDiGraph`] (stable indices, so
//! the indexes below stay valid across updates). Traversal does not walk
//! petgraph's per-node linked lists, which scatter across memory: each node
//! also has contiguous out- and in-adjacency arrays of `(neighbour, link)`, so
//! a query touches a few bytes per edge and a visited bitmap by node index.
//!
//! Removing a petgraph edge costs the length of both endpoints' edge lists
//! (a DNS server's can be 100 000 long), so [`Graph::remove_older_than`]
//! never does it one by one: a link whose last flow expires leaves the
//! adjacency arrays at once but stays in petgraph, empty, where a returning
//! connection on the same pair reuses it; a node left without links leaves
//! every index at once. When such leftovers pass half the live links, one
//! compaction (clear petgraph's edges, re-add the live ones, drop the dead
//! nodes) reclaims them in time linear in the graph.
//!
//! # Addresses that are never nodes
//!
//! A record is **not stored at all** (upsert reports [`Upsert::Ignored`]) when
//! either end is one of:
//!
//! - IPv4 multicast `224.0.0.0/4`, limited broadcast `255.255.255.255`,
//!   unspecified `0.0.0.0`;
//! - IPv6 multicast `ff00::/8`, unspecified `::`;
//! - loopback (`127.0.0.0/8`, `::1`): every host has these addresses, so as
//!   nodes they would join unrelated hosts into false paths;
//! - the same address at both ends (a host talking to itself).
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are classified by their IPv4
//! form. Not storing them (rather than storing and skipping them in every
//! traversal) keeps one-to-many noise such as mDNS, SSDP and DHCP from turning
//! into hub nodes, costs nothing per query, and means a query can never start
//! from or pass through them. Subnet-directed broadcasts (`10.1.2.255/24`)
//! cannot be told from unicast without the netmask and are stored like any
//! other address.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use petgraph::stable_graph::{EdgeIndex, NodeIndex, StableDiGraph};
use serde::{Deserialize, Serialize};

/// A node's identity: its IP address.
pub type NodeId = IpAddr;

/// One row of the `connections` table: the current cumulative aggregate for the
/// key `(src_ip, src_process, dst_ip, dst_port, protocol)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeRecord {
    pub src_ip: IpAddr,
    pub src_host: Option<String>,
    pub src_process: String,
    pub dst_ip: IpAddr,
    pub dst_host: Option<String>,
    pub dst_port: u16,
    pub protocol: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub count: i64,
    pub bytes: i64,
}

/// What is known against a host, for the risk score (see [`RiskFacts::base_score`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RiskFacts {
    /// Critical CVEs in installed packages.
    pub critical_cves: u32,
    /// High CVEs in installed packages.
    pub high_cves: u32,
    /// Alerts on the host in the recent window.
    pub recent_alerts: u32,
    /// Vulnerable packages whose binaries are running (the exploitable ones).
    pub running_vulnerable: u32,
}

impl RiskFacts {
    /// `10·running_vulnerable + 5·critical_cves + 2·high_cves + 3·recent_alerts`
    /// (saturating). A running vulnerable binary weighs most because it is
    /// reachable now; an alert suggests the host is already being worked on.
    pub fn base_score(&self) -> u32 {
        self.running_vulnerable
            .saturating_mul(10)
            .saturating_add(self.critical_cves.saturating_mul(5))
            .saturating_add(self.high_cves.saturating_mul(2))
            .saturating_add(self.recent_alerts.saturating_mul(3))
    }
}

/// What [`Graph::upsert`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// A new flow.
    Inserted,
    /// An existing flow now holds the record's values.
    Replaced,
    /// The stored flow was seen later than the record (`last_seen` is newer), so
    /// the record is an out-of-date copy of the row and was not applied.
    Stale,
    /// An end is never a node (multicast, broadcast, unspecified, loopback) or
    /// both ends are the same address; nothing was stored.
    Ignored,
}

/// Counts of [`Upsert`] outcomes from [`Graph::upsert_many`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UpsertSummary {
    pub inserted: usize,
    pub replaced: usize,
    pub stale: usize,
    pub ignored: usize,
}

/// An interned string (host name, process name or protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Sym(pub(crate) u32);

/// Strings stored once, referred to by [`Sym`]. Never shrinks: the number of
/// distinct host, process and protocol names is small next to the flows.
#[derive(Debug, Default, Clone)]
pub(crate) struct Interner {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    pub(crate) fn get(&self, s: &str) -> Option<Sym> {
        self.ids.get(s).map(|&i| Sym(i))
    }

    pub(crate) fn intern(&mut self, s: &str) -> Sym {
        if let Some(&i) = self.ids.get(s) {
            return Sym(i);
        }
        let i = self.names.len() as u32;
        self.names.push(s.into());
        self.ids.insert(s.into(), i);
        Sym(i)
    }

    pub(crate) fn name(&self, s: Sym) -> &str {
        self.names.get(s.0 as usize).map_or("", |n| n)
    }
}

/// A node: an IP address and the host it belongs to, when known.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) ip: IpAddr,
    pub(crate) host: Option<Sym>,
    /// Out of every index, waiting for the next compaction.
    dead: bool,
}

/// A node as the address index holds it. The label and its age sit here,
/// next to the key, so an upsert whose names match the labels (nearly all)
/// never touches the node itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub(crate) node: NodeIndex,
    host: Option<Sym>,
    /// `last_seen` of the record that gave `host`.
    host_seen: DateTime<Utc>,
}

/// One `connections` row inside a link (the link gives src and dst).
#[derive(Debug, Clone)]
pub(crate) struct Flow {
    pub(crate) process: Sym,
    pub(crate) protocol: Sym,
    pub(crate) dst_port: u16,
    pub(crate) count: i64,
    pub(crate) bytes: i64,
    pub(crate) first_seen: DateTime<Utc>,
    pub(crate) last_seen: DateTime<Utc>,
}

/// All flows from one node to another. Empty only for a dead link awaiting
/// compaction (see the module docs), which no adjacency array lists.
#[derive(Debug, Clone, Default)]
pub(crate) struct Link {
    pub(crate) flows: Vec<Flow>,
}

/// One entry of a node's adjacency array: the node at the other end and the link.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Adj {
    pub(crate) node: NodeIndex,
    pub(crate) edge: EdgeIndex,
}

/// Hashes a `(src, dst)` node-index pair (our own sequential numbers, not
/// input, so an unkeyed hash is safe) with the murmur3 finaliser.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PairHasher(u64);

impl Hasher for PairHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 ^= x;
    }

    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
}

fn pair(a: NodeIndex, b: NodeIndex) -> u64 {
    (a.index() as u64) << 32 | b.index() as u64
}

/// The connection graph. See the [module docs](self) for its shape.
///
/// Cheap to query concurrently (`&self`, `Send + Sync`); updates take `&mut self`.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub(crate) g: StableDiGraph<Node, Link>,
    pub(crate) by_ip: HashMap<IpAddr, Slot>,
    /// `(src, dst)` → the link between them (live or dead), so upserts never scan a hub's adjacency.
    links: HashMap<u64, EdgeIndex, BuildHasherDefault<PairHasher>>,
    /// Per node index: live links out of it and into it.
    pub(crate) out_adj: Vec<Vec<Adj>>,
    pub(crate) in_adj: Vec<Vec<Adj>>,
    /// Empty links and dead nodes still in petgraph.
    dead_links: usize,
    dead_nodes: usize,
    pub(crate) hosts: Interner,
    /// Per host symbol: its nodes.
    pub(crate) host_nodes: Vec<Vec<NodeIndex>>,
    /// Per host symbol: its risk facts (missing = none).
    pub(crate) risk: Vec<RiskFacts>,
    pub(crate) processes: Interner,
    pub(crate) protocols: Interner,
    flows: usize,
}

/// True for addresses that never become nodes (see the module docs).
pub fn is_excluded(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_multicast() || v4.is_broadcast() || v4.is_unspecified() || v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_multicast() || v6.is_unspecified() || v6.is_loopback(),
    }
}

/// A host name as stored and looked up: trimmed, ASCII lower-case; `None` when empty.
pub(crate) fn normalise_host(name: &str) -> Option<std::borrow::Cow<'_, str>> {
    let t = name.trim();
    if t.is_empty() {
        None
    } else if t.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(std::borrow::Cow::Owned(t.to_ascii_lowercase()))
    } else {
        Some(std::borrow::Cow::Borrowed(t))
    }
}

/// A protocol as stored and looked up: trimmed, ASCII lower-case.
pub(crate) fn normalise_protocol(p: &str) -> std::borrow::Cow<'_, str> {
    let t = p.trim();
    if t.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(t.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(t)
    }
}

impl Graph {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of nodes (IP addresses).
    pub fn node_count(&self) -> usize {
        self.g.node_count() - self.dead_nodes
    }

    /// Number of flows (`connections` rows held).
    pub fn edge_count(&self) -> usize {
        self.flows
    }

    /// Number of links (ordered node pairs with at least one flow).
    pub fn link_count(&self) -> usize {
        self.g.edge_count() - self.dead_links
    }

    /// Insert the record's flow, or replace the stored flow for its key with the
    /// record's cumulative values. A record older than the stored flow
    /// (`last_seen` earlier) is not applied ([`Upsert::Stale`]); one with an
    /// excluded end is not stored ([`Upsert::Ignored`]).
    pub fn upsert(&mut self, r: EdgeRecord) -> Upsert {
        if r.src_ip == r.dst_ip || is_excluded(r.src_ip) || is_excluded(r.dst_ip) {
            return Upsert::Ignored;
        }
        let a = self.node(r.src_ip, r.src_host.as_deref(), r.last_seen);
        let b = self.node(r.dst_ip, r.dst_host.as_deref(), r.last_seen);
        let process = self.processes.intern(&r.src_process);
        let protocol = self.protocols.intern(&normalise_protocol(&r.protocol));
        let flow = Flow {
            process,
            protocol,
            dst_port: r.dst_port,
            count: r.count,
            bytes: r.bytes,
            first_seen: r.first_seen,
            last_seen: r.last_seen,
        };
        let e = match self.links.get(&pair(a, b)) {
            Some(&e) => e,
            None => {
                let e = self.g.add_edge(a, b, Link { flows: Vec::with_capacity(1) });
                self.links.insert(pair(a, b), e);
                self.dead_links += 1; // made live below
                e
            }
        };
        let Some(link) = self.g.edge_weight_mut(e) else { return Upsert::Ignored };
        let revived = link.flows.is_empty();
        let outcome = match link
            .flows
            .iter_mut()
            .find(|f| f.process == process && f.dst_port == r.dst_port && f.protocol == protocol)
        {
            Some(f) if f.last_seen > flow.last_seen => Upsert::Stale,
            Some(f) => {
                *f = flow;
                Upsert::Replaced
            }
            None => {
                link.flows.push(flow);
                self.flows += 1;
                Upsert::Inserted
            }
        };
        if revived {
            self.dead_links -= 1;
            self.out_adj[a.index()].push(Adj { node: b, edge: e });
            self.in_adj[b.index()].push(Adj { node: a, edge: e });
        }
        outcome
    }

    /// [`upsert`](Self::upsert) each record, in order.
    pub fn upsert_many(&mut self, records: impl IntoIterator<Item = EdgeRecord>) -> UpsertSummary {
        let mut s = UpsertSummary::default();
        let records = records.into_iter();
        // A first load reserves once instead of rehashing as it grows; a refresh
        // of keys already held reserves little or nothing.
        let extra = records.size_hint().0.saturating_sub(self.links.len());
        self.links.reserve(extra);
        self.g.reserve_edges(extra);
        for r in records {
            match self.upsert(r) {
                Upsert::Inserted => s.inserted += 1,
                Upsert::Replaced => s.replaced += 1,
                Upsert::Stale => s.stale += 1,
                Upsert::Ignored => s.ignored += 1,
            }
        }
        s
    }

    /// Drop flows last seen before `cutoff`, then links left empty, then nodes
    /// left without links. Returns the number of flows dropped. Costs one pass
    /// over the links plus the adjacency of the nodes that lost a link (see the
    /// module docs).
    pub fn remove_older_than(&mut self, cutoff: DateTime<Utc>) -> usize {
        let mut dropped = 0;
        let (mut outs, mut ins) = (Vec::new(), Vec::new());
        for e in self.g.edge_indices().collect::<Vec<_>>() {
            let Some(link) = self.g.edge_weight_mut(e) else { continue };
            if link.flows.is_empty() {
                continue; // already dead
            }
            let before = link.flows.len();
            link.flows.retain(|f| f.last_seen >= cutoff);
            dropped += before - link.flows.len();
            if link.flows.is_empty() {
                if let Some((a, b)) = self.g.edge_endpoints(e) {
                    outs.push(a);
                    ins.push(b);
                }
                self.dead_links += 1;
            }
        }
        self.flows -= dropped;
        if outs.is_empty() {
            return dropped;
        }
        let g = &self.g;
        let live = |x: &Adj| g.edge_weight(x.edge).is_some_and(|l| !l.flows.is_empty());
        for (nodes, adj) in [(&mut outs, &mut self.out_adj), (&mut ins, &mut self.in_adj)] {
            nodes.sort_unstable();
            nodes.dedup();
            for n in nodes.iter() {
                adj[n.index()].retain(live);
            }
        }
        outs.extend(ins);
        outs.sort_unstable();
        outs.dedup();
        for n in outs {
            if self.out_adj[n.index()].is_empty() && self.in_adj[n.index()].is_empty() {
                self.kill_node(n);
            }
        }
        if self.dead_links + self.dead_nodes > self.link_count() / 2 + 1024 {
            self.compact();
        }
        dropped
    }

    /// Reclaim dead links and nodes from petgraph: clear its edges, drop the
    /// dead nodes (now edge-less, so O(1) each), re-add the live links.
    fn compact(&mut self) {
        let mut live = Vec::with_capacity(self.link_count());
        for e in self.g.edge_indices().collect::<Vec<_>>() {
            let Some((a, b)) = self.g.edge_endpoints(e) else { continue };
            let Some(link) = self.g.edge_weight_mut(e).map(std::mem::take) else { continue };
            if !link.flows.is_empty() {
                live.push((a, b, link));
            }
        }
        self.g.clear_edges();
        let dead: Vec<NodeIndex> = self.g.node_indices().filter(|&n| self.g[n].dead).collect();
        for n in dead {
            self.g.remove_node(n);
        }
        self.links.clear();
        self.out_adj.iter_mut().chain(self.in_adj.iter_mut()).for_each(Vec::clear);
        for (a, b, link) in live {
            let e = self.g.add_edge(a, b, link);
            self.links.insert(pair(a, b), e);
            self.out_adj[a.index()].push(Adj { node: b, edge: e });
            self.in_adj[b.index()].push(Adj { node: a, edge: e });
        }
        self.dead_links = 0;
        self.dead_nodes = 0;
    }

    /// Set the risk facts of a host (by name; the host need not be in the graph yet).
    pub fn set_host_risk(&mut self, host: &str, facts: RiskFacts) {
        let Some(name) = normalise_host(host) else { return };
        let s = self.hosts.intern(&name);
        let i = s.0 as usize;
        if self.risk.len() <= i {
            self.risk.resize(i + 1, RiskFacts::default());
        }
        self.risk[i] = facts;
    }

    /// Forget all risk facts.
    pub fn clear_risk(&mut self) {
        self.risk.clear();
    }

    /// The risk facts set for a host (zero when none).
    pub fn host_risk(&self, host: &str) -> RiskFacts {
        normalise_host(host).and_then(|n| self.hosts.get(&n)).map(|s| self.sym_risk(s)).unwrap_or_default()
    }

    /// The IP addresses labelled with this host, sorted.
    pub fn host_ips(&self, host: &str) -> Vec<IpAddr> {
        let mut ips: Vec<IpAddr> = self.host_node_ids(host).iter().map(|&n| self.g[n].ip).collect();
        ips.sort_unstable();
        ips
    }

    /// The host label of a node, if it is in the graph and named.
    pub fn host_of(&self, ip: IpAddr) -> Option<&str> {
        let n = self.by_ip.get(&ip)?.node;
        self.g[n].host.map(|s| self.hosts.name(s))
    }

    /// Whether the address is a node.
    pub fn contains_ip(&self, ip: IpAddr) -> bool {
        self.by_ip.contains_key(&ip)
    }

    /// The flows from `src` to `dst` as records (hosts are the nodes' current
    /// labels), sorted by `(dst_port, protocol, src_process)`.
    pub fn flows(&self, src: IpAddr, dst: IpAddr) -> Vec<EdgeRecord> {
        let (Some(a), Some(b)) = (self.by_ip.get(&src), self.by_ip.get(&dst)) else { return Vec::new() };
        let (a, b) = (a.node, b.node);
        let Some(link) = self.link(a, b) else { return Vec::new() };
        let host = |n: NodeIndex| self.g[n].host.map(|s| self.hosts.name(s).to_string());
        let mut out: Vec<EdgeRecord> = link
            .flows
            .iter()
            .map(|f| EdgeRecord {
                src_ip: src,
                src_host: host(a),
                src_process: self.processes.name(f.process).to_string(),
                dst_ip: dst,
                dst_host: host(b),
                dst_port: f.dst_port,
                protocol: self.protocols.name(f.protocol).to_string(),
                first_seen: f.first_seen,
                last_seen: f.last_seen,
                count: f.count,
                bytes: f.bytes,
            })
            .collect();
        out.sort_by(|x, y| (x.dst_port, &x.protocol, &x.src_process).cmp(&(y.dst_port, &y.protocol, &y.src_process)));
        out
    }

    /// The live link from `a` to `b`.
    pub(crate) fn link_id(&self, a: NodeIndex, b: NodeIndex) -> Option<EdgeIndex> {
        let e = *self.links.get(&pair(a, b))?;
        self.g.edge_weight(e).filter(|l| !l.flows.is_empty()).map(|_| e)
    }

    pub(crate) fn link(&self, a: NodeIndex, b: NodeIndex) -> Option<&Link> {
        self.link_id(a, b).and_then(|e| self.g.edge_weight(e))
    }

    /// The live links out of `n`.
    pub(crate) fn out_links(&self, n: NodeIndex) -> &[Adj] {
        self.out_adj.get(n.index()).map_or(&[], Vec::as_slice)
    }

    /// The live links into `n`.
    pub(crate) fn in_links(&self, n: NodeIndex) -> &[Adj] {
        self.in_adj.get(n.index()).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn host_node_ids(&self, host: &str) -> &[NodeIndex] {
        normalise_host(host)
            .and_then(|n| self.hosts.get(&n))
            .and_then(|s| self.host_nodes.get(s.0 as usize))
            .map_or(&[], |v| v.as_slice())
    }

    pub(crate) fn sym_risk(&self, s: Sym) -> RiskFacts {
        self.risk.get(s.0 as usize).copied().unwrap_or_default()
    }

    /// Risk facts of a node's host (zero when unnamed or none set).
    pub(crate) fn node_risk(&self, n: NodeIndex) -> RiskFacts {
        match self.g.node_weight(n).and_then(|w| w.host) {
            Some(s) => self.sym_risk(s),
            None => RiskFacts::default(),
        }
    }

    /// Host label of a node as an owned string.
    pub(crate) fn label(&self, n: NodeIndex) -> Option<String> {
        self.g.node_weight(n).and_then(|w| w.host).map(|s| self.hosts.name(s).to_string())
    }

    /// The node for `ip`, created if new, relabelled if `host` is newer than its label.
    fn node(&mut self, ip: IpAddr, host: Option<&str>, seen: DateTime<Utc>) -> NodeIndex {
        let slot = match self.by_ip.entry(ip) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let n = self.g.add_node(Node { ip, host: None, dead: false });
                let bound = n.index() + 1;
                if self.out_adj.len() < bound {
                    self.out_adj.resize_with(bound, Vec::new);
                    self.in_adj.resize_with(bound, Vec::new);
                }
                v.insert(Slot { node: n, host: None, host_seen: DateTime::<Utc>::MIN_UTC })
            }
        };
        let n = slot.node;
        let Some(name) = host.and_then(normalise_host) else { return n };
        let old = slot.host;
        if let Some(o) = old {
            if seen < slot.host_seen {
                return n;
            }
            if self.hosts.name(o) == name {
                slot.host_seen = seen; // the usual case: same name, no interning, no node access
                return n;
            }
        }
        let s = self.hosts.intern(&name);
        slot.host = Some(s);
        slot.host_seen = seen;
        self.g[n].host = Some(s);
        if old != Some(s) {
            if let Some(o) = old {
                if let Some(v) = self.host_nodes.get_mut(o.0 as usize) {
                    v.retain(|&m| m != n);
                }
            }
            let i = s.0 as usize;
            if self.host_nodes.len() <= i {
                self.host_nodes.resize_with(i + 1, Vec::new);
            }
            self.host_nodes[i].push(n);
        }
        n
    }

    /// Take a node without links out of every index; compaction removes it from petgraph.
    fn kill_node(&mut self, n: NodeIndex) {
        let Some(w) = self.g.node_weight_mut(n) else { return };
        if w.dead {
            return;
        }
        w.dead = true;
        let (ip, host) = (w.ip, w.host);
        self.dead_nodes += 1;
        self.by_ip.remove(&ip);
        if let Some(v) = host.and_then(|s| self.host_nodes.get_mut(s.0 as usize)) {
            v.retain(|&m| m != n);
        }
    }
}
