// Graph: blast radius, paths and neighbourhoods from the in-memory connection
// graph, drawn with cytoscape. Clicking a node offers pivots to Search.

import { useCallback, useEffect, useMemo, useState, type FormEvent } from 'react';
import { api, errorMessage, type Hop, type Reached } from '../api';
import { GraphCanvas, type GraphEdge, type GraphNode } from '../components/GraphCanvas';
import { navigate, pivot } from '../router';
import { fmtBytes } from '../format';

type Mode = 'blast' | 'paths' | 'neighbourhood';

interface Drawn {
  nodes: GraphNode[];
  edges: GraphEdge[];
  summary: string;
}

function hopLabel(h: Hop): string {
  return `${h.protocol}/${h.dst_port}`;
}

function reachedNode(r: Reached, start: boolean): GraphNode {
  return { id: r.ip, label: r.host ?? r.ip, host: r.host, ip: r.ip, hops: r.hops, risk: r.risk.score, start, facts: { ...r.risk.facts } };
}

function edgesFromHops(hops: Hop[], into: Map<string, GraphEdge>): void {
  for (const h of hops) {
    const [src, dst] = h.reversed ? [h.to, h.from] : [h.from, h.to];
    const id = `${src}->${dst}`;
    const e = into.get(id);
    if (!e) into.set(id, { id, source: src, target: dst, label: hopLabel(h) });
    else if (!e.label.split(', ').includes(hopLabel(h)) && e.label.length < 40) e.label += `, ${hopLabel(h)}`;
  }
}

/** The SRQL that searches a node's events. */
export function nodeQuery(n: GraphNode): string {
  return n.host ? `host:${n.host}` : `src_ip:${n.ip} OR dst_ip:${n.ip}`;
}

export function GraphPage({ params }: { params: URLSearchParams }) {
  const [mode, setMode] = useState<Mode>((params.get('mode') as Mode) || 'blast');
  const [from, setFrom] = useState(params.get('from') ?? 'web-01');
  const [to, setTo] = useState(params.get('to') ?? '');
  const [hops, setHops] = useState(Number(params.get('hops') ?? 2));
  const [direction, setDirection] = useState(params.get('direction') ?? 'out');
  const [ports, setPorts] = useState('');
  const [layout, setLayout] = useState<'concentric' | 'cose' | 'breadthfirst'>('concentric');
  const [drawn, setDrawn] = useState<Drawn | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [selected, setSelected] = useState<{ node: GraphNode; x: number; y: number } | null>(null);

  const load = useCallback(async (m: Mode, start: string, target: string, h: number, dir: string, p: string) => {
    if (!start.trim()) return;
    setLoading(true);
    setError(null);
    setSelected(null);
    try {
      if (m === 'blast') {
        const r = await api.blastRadius({ from: start.trim(), hops: h, direction: dir, ports: p || undefined, limit: 300 });
        const nodes = new Map<string, GraphNode>();
        for (const s of r.result.starts) nodes.set(s.ip, reachedNode(s, true));
        for (const n of r.result.reached) if (!nodes.has(n.ip)) nodes.set(n.ip, reachedNode(n, false));
        const edges = new Map<string, GraphEdge>();
        for (const n of r.result.reached) edgesFromHops(n.path, edges);
        // Path hops may pass through nodes cut by the limit: add them plainly.
        for (const e of edges.values())
          for (const ip of [e.source, e.target])
            if (!nodes.has(ip)) nodes.set(ip, { id: ip, label: ip, host: null, ip, hops: h, risk: 0, start: false });
        setDrawn({
          nodes: [...nodes.values()],
          edges: [...edges.values()],
          summary: `${r.result.total_reached} nodes reached from ${r.from} within ${r.hops} hops (${r.direction})${r.result.truncated ? ', list truncated' : ''} · ${r.took_ms.toFixed(2)} ms`,
        });
      } else if (m === 'paths') {
        const r = await api.paths({ from: start.trim(), to: target.trim(), k: 5, max_hops: Math.max(h, 2), direction: dir });
        const nodes = new Map<string, GraphNode>();
        const edges = new Map<string, GraphEdge>();
        for (const path of r.paths) {
          path.nodes.forEach((n, i) => {
            const isEnd = i === 0 || i === path.nodes.length - 1;
            const cur = nodes.get(n.ip);
            if (!cur || cur.hops > i) nodes.set(n.ip, { id: n.ip, label: n.host ?? n.ip, host: n.host, ip: n.ip, hops: i, risk: 0, start: isEnd });
          });
          edgesFromHops(path.hops, edges);
        }
        setDrawn({
          nodes: [...nodes.values()],
          edges: [...edges.values()],
          summary: r.paths.length ? `${r.paths.length} path(s) from ${r.from} to ${r.to}, shortest ${r.paths[0].hops.length} hop(s)` : `no path from ${r.from} to ${r.to}`,
        });
      } else {
        const r = await api.neighbourhood({ node: start.trim(), hops: h, limit: 300 });
        setDrawn({
          nodes: r.result.nodes.map((n) => ({ id: n.id, label: n.host ?? n.ip, host: n.host, ip: n.ip, hops: n.hops, risk: n.risk.score, start: n.hops === 0, facts: { ...n.risk.facts } })),
          edges: r.result.edges.map((e) => ({
            id: `${e.source}->${e.target}`,
            source: e.source,
            target: e.target,
            label: `${e.ports.slice(0, 3).join(',')}${e.ports.length > 3 ? '…' : ''} ${fmtBytes(e.bytes)}`,
          })),
          summary: `${r.result.nodes.length} nodes, ${r.result.edges.length} links around ${r.node}${r.result.truncated ? ' (truncated)' : ''}`,
        });
      }
    } catch (e) {
      setDrawn(null);
      setError(errorMessage(e));
    } finally {
      setLoading(false);
    }
  }, []);

  // A link (#/graph?from=web-01&hops=2) draws at once.
  const fromParam = params.get('from');
  const hopsParam = params.get('hops');
  useEffect(() => {
    const start = fromParam ?? from;
    const h = hopsParam ? Number(hopsParam) : hops;
    setFrom(start);
    setHops(h);
    void load(mode, start, to, h, direction, ports);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [fromParam, hopsParam]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    void load(mode, from, to, hops, direction, ports);
  };

  const ranked = useMemo(() => (drawn ? [...drawn.nodes].sort((a, b) => a.hops - b.hops || b.risk - a.risk).slice(0, 100) : []), [drawn]);

  const recenter = (n: GraphNode, m: Mode) => {
    const start = n.host ?? n.ip;
    setFrom(start);
    setMode(m);
    void load(m, start, to, hops, direction, ports);
  };

  return (
    <div className="page graph-page">
      <form className="toolbar" onSubmit={submit} data-testid="graph-form">
        <select value={mode} onChange={(e) => setMode(e.target.value as Mode)} data-testid="graph-mode">
          <option value="blast">Blast radius</option>
          <option value="paths">Paths</option>
          <option value="neighbourhood">Neighbourhood</option>
        </select>
        <input value={from} onChange={(e) => setFrom(e.target.value)} placeholder="host, IP or host/process" data-testid="graph-from" />
        {mode === 'paths' && <input value={to} onChange={(e) => setTo(e.target.value)} placeholder="to host or IP" data-testid="graph-to" />}
        <label className="inline">
          hops
          <input type="number" min={1} max={6} value={hops} onChange={(e) => setHops(Number(e.target.value))} className="narrow" />
        </label>
        {mode !== 'neighbourhood' && (
          <select value={direction} onChange={(e) => setDirection(e.target.value)}>
            <option value="out">out</option>
            <option value="in">in</option>
            <option value="both">both</option>
          </select>
        )}
        {mode === 'blast' && <input value={ports} onChange={(e) => setPorts(e.target.value)} placeholder="ports 22,443" className="narrow-2" />}
        <select value={layout} onChange={(e) => setLayout(e.target.value as typeof layout)} title="Layout">
          <option value="concentric">rings by hops</option>
          <option value="breadthfirst">tree</option>
          <option value="cose">force (cose)</option>
        </select>
        <button className="btn primary" type="submit" disabled={loading} data-testid="graph-draw">
          {loading ? 'Drawing…' : 'Draw'}
        </button>
      </form>
      {error && (
        <div className="error-box" data-testid="graph-error">
          {error}
        </div>
      )}
      {drawn && (
        <div className="status-line" data-testid="graph-summary">
          {drawn.summary}
        </div>
      )}
      <div className="graph-layout">
        <div className="graph-stage">
          {drawn && drawn.nodes.length > 0 && (
            <GraphCanvas nodes={drawn.nodes} edges={drawn.edges} layout={layout} onNodeClick={(n, p) => setSelected({ node: n, ...p })} onBackgroundClick={() => setSelected(null)} />
          )}
          {drawn && drawn.nodes.length === 0 && <div className="empty">Nothing reached.</div>}
          {selected && (
            <div className="node-menu" style={{ left: selected.x + 12, top: selected.y + 12 }} data-testid="node-menu">
              <div className="node-menu-title">{selected.node.label}</div>
              <div className="dim small">
                {selected.node.ip} · {selected.node.hops} hop(s) · risk {selected.node.risk.toFixed(1)}
              </div>
              {selected.node.facts && (
                <div className="dim small">
                  {selected.node.facts.running_vulnerable} running vulnerable · {selected.node.facts.critical_cves} critical CVEs · {selected.node.facts.recent_alerts} alerts
                </div>
              )}
              <button className="btn small primary" onClick={() => pivot(nodeQuery(selected.node))} data-testid="pivot-search">
                Search {nodeQuery(selected.node)}
              </button>
              {selected.node.host && (
                <button className="btn small" onClick={() => pivot(`in:connections host:${selected.node.host} | sort -bytes`)}>
                  Its connections
                </button>
              )}
              {selected.node.host && (
                <button className="btn small" onClick={() => pivot(`in:alerts host:${selected.node.host}`)}>
                  Its alerts
                </button>
              )}
              <button className="btn small" onClick={() => recenter(selected.node, 'blast')}>
                Blast radius from here
              </button>
              <button className="btn small" onClick={() => recenter(selected.node, 'neighbourhood')}>
                Neighbourhood
              </button>
            </div>
          )}
        </div>
        <aside className="graph-side">
          <table className="results compact" data-testid="graph-nodes">
            <thead>
              <tr>
                <th>node</th>
                <th>hops</th>
                <th>risk</th>
              </tr>
            </thead>
            <tbody>
              {ranked.map((n) => (
                <tr key={n.id}>
                  <td>
                    <button className="link" onClick={() => pivot(nodeQuery(n))} title={`Search ${nodeQuery(n)}`}>
                      {n.label}
                    </button>
                    {n.host && <span className="dim small"> {n.ip}</span>}
                  </td>
                  <td>{n.hops}</td>
                  <td className={n.risk >= 10 ? 'hot' : ''}>{n.risk.toFixed(1)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="dim small">
            Click a node for its pivots. <button className="link" onClick={() => navigate('search', { q: `host:${from} | blast_radius hops:${hops} direction:${direction}`, run: '1' })}>As SRQL</button>
          </p>
        </aside>
      </div>
    </div>
  );
}
