// An on-demand benchmark of how quick the analyst UI feels ("as quick as
// Kibana Discover"): not a test, nothing is asserted against a threshold.
// `npm run bench` (after `npm run build`) starts the e2e stack (harness.mjs:
// a fresh database, a real `vigil up`, Debian's chromium) with a larger demo,
// then measures in the browser, with performance.now() in the page:
//
//   - cold page load: navigation start → the signed-in search page's editor
//     visible (a new browser context each time: empty HTTP cache), and a warm
//     reload of the same;
//   - search: Ctrl+Enter (the keydown, in the page) → the result rows (and,
//     for | stats / | timechart, the chart) in the DOM and painted, for
//     several realistic queries, next to the browser's HTTP time and the
//     server's `took_ms`, so the UI's own share is visible;
//   - graph: submit of the blast-radius form → cytoscape's nodes drawn.
//
// Options (flags or environment): --runs N (BENCH_RUNS, 20), --warmup N
// (BENCH_WARMUP, 3), --demo-events N (BENCH_DEMO_EVENTS, 50000), --json FILE
// (also write the raw samples).

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { startStack } from '../e2e/harness.mjs';

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: process.env.BENCH_RUNS ?? '20' },
    warmup: { type: 'string', default: process.env.BENCH_WARMUP ?? '3' },
    'demo-events': { type: 'string', default: process.env.BENCH_DEMO_EVENTS ?? '50000' },
    json: { type: 'string' },
  },
});
const RUNS = Number(opts.runs);
const WARMUP = Number(opts.warmup);
const DEMO_EVENTS = Number(opts['demo-events']);

// The queries typed into the editor. `chart`: a | stats / | timechart result
// also waits for its chart canvas.
const QUERIES = [
  { name: 'kind:process | head 100', q: 'kind:process | head 100' },
  { name: 'failed auth by src_ip (stats, chart)', q: 'kind:auth status:failure | stats count() as n by src_ip | sort -n | head 10', chart: true },
  { name: 'timechart by severity, 24 h', q: 'time:last_24h | timechart count() by severity', chart: true },
  { name: 'host:web-01 severity:>=medium', q: 'host:web-01 severity:>=medium' },
  { name: 'free text: password', q: 'password' },
  { name: 'in:connections top bytes', q: 'in:connections | sort -bytes | head 100' },
];

const log = (...a) => console.error('[bench]', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- statistics ----------------------------------------------------------

function pct(xs, p) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
const fmt = (x) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(1)) : '–');

function table(header, rows) {
  const all = [header, ...rows].map((r) => r.map(String));
  const w = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(all[0]), w.map((n) => '-'.repeat(n)).join('  '), ...all.slice(1).map(line)].join('\n');
}

// ---- the machine ---------------------------------------------------------

/** CPU busy fraction over `ms` (all cores), from /proc/stat. */
async function cpuBusy(ms) {
  const read = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] ?? 0);
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  const a = read();
  await sleep(ms);
  const b = read();
  return 1 - (b.idle - a.idle) / Math.max(1, b.total - a.total);
}

/** Waits (up to `maxMs`) until the background work after start settles. */
async function waitQuiet(maxMs) {
  const deadline = Date.now() + maxMs;
  let busy = 1;
  while (Date.now() < deadline) {
    busy = await cpuBusy(2000);
    if (busy < 0.25) return busy;
  }
  return busy;
}

// ---- page instrumentation --------------------------------------------------

// Installed in every page before its scripts. `__bench.searchArm(chart)`
// arms a measurement: the Ctrl+Enter keydown (capture phase, before
// CodeMirror) is t0; the end is the first DOM change after the run button
// went "Running…" (disabled) and back with result rows (and a chart canvas)
// in place, or an error; then one animation frame and a task later (≈ after
// the paint) is "painted". `__bench.graphArm()` does the same for the graph
// form's submit → cytoscape's first render of the new graph.
function instrument() {
  const b = (window.__bench = { editorReady: null, editorDom: null });
  const painted = (cb) =>
    requestAnimationFrame(() => {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => cb(performance.now());
      ch.port2.postMessage(0);
    });
  // Cold load: the editor appears.
  const mo = new MutationObserver(() => {
    if (b.editorDom === null && document.querySelector('[data-testid=srql-editor] .cm-content')) {
      b.editorDom = performance.now();
      mo.disconnect();
      painted((t) => (b.editorReady = t));
    }
  });
  mo.observe(document, { childList: true, subtree: true });

  let arm = null;
  const watch = (st, btnSel, doneFn) => {
    const check = () => {
      if (st.t0 === null || st.dom !== null) return;
      const btn = document.querySelector(btnSel);
      if (btn?.disabled) st.sawLoading = true;
      else if (st.sawLoading && doneFn(st)) {
        st.dom = performance.now();
        obs.disconnect();
        st.finish();
      }
    };
    const obs = new MutationObserver(check);
    obs.observe(document.body, { childList: true, subtree: true, attributes: true, characterData: true });
    return check;
  };

  b.searchArm = (chart) => {
    const st = (arm = { kind: 'search', t0: null, sawLoading: false, dom: null, done: null, rows: 0, error: null, chart: false });
    st.finish = () => painted((t) => (st.done = t));
    watch(st, '[data-testid=run-query]', (s) => {
      const err = document.querySelector('[data-testid=query-error]');
      if (err) return (s.error = err.textContent), true;
      if (!document.querySelector('[data-testid=result-status]')) return false;
      s.rows = document.querySelectorAll('[data-testid=result-row]').length;
      s.chart = !!document.querySelector('[data-testid=result-chart] canvas, [data-testid=result-chart].big-numbers');
      return (s.rows > 0 || /^\s*0 rows/.test(document.querySelector('[data-testid=result-total]')?.textContent ?? '')) && (!chart || s.chart);
    });
    return true;
  };
  b.graphArm = () => {
    const prev = document.querySelector('[data-testid=graph-canvas]')?.__cy ?? null;
    const st = (arm = { kind: 'graph', t0: null, sawLoading: false, dom: null, done: null, nodes: 0, error: null, viaRender: false });
    st.finish = () => {
      const cy = document.querySelector('[data-testid=graph-canvas]')?.__cy;
      let fired = false;
      const end = (via) => {
        if (fired) return;
        fired = true;
        st.viaRender = via;
        painted((t) => (st.done = t));
      };
      // cytoscape draws on its own animation frame: wait for its render.
      if (cy) cy.one('render', () => end(true));
      setTimeout(() => end(false), 1000);
    };
    watch(st, '[data-testid=graph-draw]', (s) => {
      const err = document.querySelector('[data-testid=graph-error]');
      if (err) return (s.error = err.textContent), true;
      const cy = document.querySelector('[data-testid=graph-canvas]')?.__cy;
      if (!cy || cy === prev || cy.destroyed()) return false;
      s.nodes = cy.nodes().length;
      return s.nodes > 0;
    });
    return true;
  };
  b.result = () => {
    const s = arm;
    if (!s || s.done === null) return null;
    const api = performance
      .getEntriesByType('resource')
      .filter((e) => /\/api\/v1\/(search|graph\/blast-radius)/.test(e.name) && e.startTime >= s.t0 && e.responseEnd <= s.dom);
    return {
      e2e: s.done - s.t0,
      dom: s.dom - s.t0,
      // The browser's view of the request(s) the result waited for.
      http: api.reduce((a, e) => a + (e.responseEnd - e.startTime), 0),
      requests: api.length,
      rows: s.rows,
      nodes: s.nodes,
      chart: s.chart,
      error: s.error,
      viaRender: s.viaRender,
    };
  };
  window.addEventListener(
    'keydown',
    (e) => {
      if (arm && arm.kind === 'search' && arm.t0 === null && e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        performance.clearResourceTimings();
        arm.t0 = performance.now();
      }
    },
    true,
  );
  window.addEventListener(
    'submit',
    () => {
      if (arm && arm.kind === 'graph' && arm.t0 === null) {
        performance.clearResourceTimings();
        arm.t0 = performance.now();
      }
    },
    true,
  );
}

// ---- the benchmark ---------------------------------------------------------

async function api(stack, path, init = {}) {
  const r = await fetch(`${stack.base}${path}`, {
    ...init,
    headers: { Authorization: `Bearer ${stack.tokens.analyst}`, 'Content-Type': 'application/json', ...(init.headers ?? {}) },
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

async function newContext(stack) {
  const context = await stack.browser.newContext({ viewport: { width: 1440, height: 900 } });
  await context.addInitScript((t) => {
    if (!sessionStorage.getItem('vigil.token')) sessionStorage.setItem('vigil.token', t);
  }, stack.tokens.analyst);
  await context.addInitScript(instrument);
  return context;
}

async function pageLoad(stack, samples) {
  const one = async () => {
    const context = await newContext(stack);
    const page = await context.newPage();
    page.setDefaultTimeout(30000);
    const read = () =>
      page.evaluate(() => {
        const nav = performance.getEntriesByType('navigation')[0];
        const fcp = performance.getEntriesByName('first-contentful-paint')[0];
        return { editor: window.__bench.editorReady, dcl: nav?.domContentLoadedEventEnd, fcp: fcp?.startTime };
      });
    await page.goto(`${stack.base}/#/search`);
    await page.waitForFunction(() => !!window.__bench && window.__bench.editorReady !== null);
    const cold = await read();
    await page.reload();
    await page.waitForFunction(() => !!window.__bench && window.__bench.editorReady !== null);
    const warm = await read();
    await context.close();
    return { cold, warm };
  };
  for (let i = 0; i < WARMUP; i++) await one();
  for (let i = 0; i < RUNS; i++) {
    const r = await one();
    samples['load:cold'].push({ e2e: r.cold.editor, fcp: r.cold.fcp, dcl: r.cold.dcl });
    samples['load:warm'].push({ e2e: r.warm.editor, fcp: r.warm.fcp, dcl: r.warm.dcl });
  }
}

async function searches(stack, samples) {
  const context = await newContext(stack);
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // The server's took_ms of every /api/v1/search response, by query text.
  const took = new Map();
  page.on('requestfinished', async (req) => {
    if (!req.url().endsWith('/api/v1/search')) return;
    try {
      const q = req.postDataJSON()?.query;
      const body = await (await req.response())?.json();
      if (typeof body?.took_ms === 'number') took.get(q)?.push(body.took_ms);
    } catch {
      /* page closed */
    }
  });
  await page.goto(`${stack.base}/#/search`);
  await page.waitForFunction(() => !!window.__bench && window.__bench.editorReady !== null);
  const content = page.locator('[data-testid=srql-editor] .cm-content');

  const runOnce = async (s) => {
    await content.click();
    await page.keyboard.press('Control+a');
    await page.keyboard.press('Delete');
    await page.keyboard.insertText(s.q);
    await page.keyboard.press('Escape'); // close the completion popup, if any
    took.set(s.q, []);
    await page.evaluate((chart) => window.__bench.searchArm(chart), !!s.chart);
    await page.keyboard.press('Control+Enter');
    const handle = await page.waitForFunction(() => window.__bench.result(), null, { timeout: 60000 });
    const r = await handle.jsonValue();
    // The response event may trail the DOM by a moment.
    for (let i = 0; i < 40 && took.get(s.q).length < Math.max(1, r.requests); i++) await sleep(25);
    r.took = took.get(s.q).reduce((a, b) => a + b, 0);
    if (r.error) throw new Error(`bench: ${s.q}: ${r.error}`);
    return r;
  };
  // Round robin: each run follows a different query, as when an analyst
  // refines a search, and any drift in background load spreads evenly.
  for (let i = 0; i < WARMUP; i++) for (const s of QUERIES) await runOnce(s);
  for (let i = 0; i < RUNS; i++) for (const s of QUERIES) samples[`search:${s.name}`].push(await runOnce(s));
  if (errors.length) log('page errors:', errors.join('; '));
  await context.close();
}

async function graph(stack, host, samples) {
  const context = await newContext(stack);
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  const took = [];
  page.on('requestfinished', async (req) => {
    if (!req.url().includes('/api/v1/graph/blast-radius')) return;
    try {
      const body = await (await req.response())?.json();
      if (typeof body?.took_ms === 'number') took.push(body.took_ms);
    } catch {
      /* page closed */
    }
  });
  await page.goto(`${stack.base}/#/graph?from=${encodeURIComponent(host)}`);
  await page.getByTestId('graph-summary').waitFor();
  await page.getByTestId('graph-canvas').locator('canvas').first().waitFor();
  const once = async () => {
    took.length = 0;
    await page.evaluate(() => window.__bench.graphArm());
    await page.getByTestId('graph-draw').click();
    const handle = await page.waitForFunction(() => window.__bench.result(), null, { timeout: 60000 });
    const r = await handle.jsonValue();
    for (let i = 0; i < 40 && took.length < 1; i++) await sleep(25);
    r.took = took[0];
    if (r.error) throw new Error(`bench: blast radius of ${host}: ${r.error}`);
    return r;
  };
  for (let i = 0; i < WARMUP; i++) await once();
  for (let i = 0; i < RUNS; i++) samples['graph'].push(await once());
  await context.close();
}

async function main() {
  const t0 = Date.now();
  log(`starting vigil up --demo-events ${DEMO_EVENTS} (harness) …`);
  const stack = await startStack({ demoEvents: DEMO_EVENTS });
  try {
    log(`up in ${((Date.now() - t0) / 1000).toFixed(0)} s at ${stack.base}`);
    const sql = (q) => execFileSync('psql', [stack.url, '-qAtc', q], { encoding: 'utf8' }).trim();

    // A host with outgoing connections, once the graph worker has them.
    let host = null;
    for (let deadline = Date.now() + 90000; !host && Date.now() < deadline; ) {
      const top = await api(stack, '/api/v1/search', {
        method: 'POST',
        body: JSON.stringify({ query: 'in:connections | stats count() as n by src_host | where src_host:* | sort -n | head 1' }),
      });
      const h = top.body?.rows?.[0]?.src_host;
      if (h) {
        const b = await api(stack, `/api/v1/graph/blast-radius?from=${encodeURIComponent(h)}&hops=2`);
        if (b.status === 200 && b.body.result.reached.length > 0) host = h;
      }
      if (!host) await sleep(1000);
    }
    if (!host) throw new Error('bench: no host with connections in the graph after 90 s');

    // Every query must answer before it is timed.
    const answers = {};
    for (const s of QUERIES) {
      const r = await api(stack, '/api/v1/search', { method: 'POST', body: JSON.stringify({ query: s.q, limit: 100 }) });
      if (r.status !== 200) throw new Error(`bench: ${s.q} → ${r.status} ${JSON.stringify(r.body)}`);
      answers[s.name] = { total: r.body.total, rel: r.body.total_relation, vis: r.body.visualization };
    }

    log('waiting for the background work after start to settle (CPU < 25 %, up to 180 s) …');
    const busy = await waitQuiet(180000);
    log(`CPU busy ${(busy * 100).toFixed(0)} %; measuring ${RUNS} runs after ${WARMUP} warm-ups`);

    const samples = { 'load:cold': [], 'load:warm': [], graph: [] };
    for (const s of QUERIES) samples[`search:${s.name}`] = [];
    const tb = Date.now();
    await pageLoad(stack, samples);
    await searches(stack, samples);
    await graph(stack, host, samples);
    const benchS = (Date.now() - tb) / 1000;

    const events = sql('SELECT count(*) FROM events');
    const connections = sql('SELECT count(*) FROM connections');
    const pg = sql('SHOW server_version');
    const version = stack.browser.version();

    const rows = [];
    const row = (name, xs, extra = {}) =>
      rows.push([
        name,
        xs.length,
        fmt(pct(xs.map((x) => x.e2e), 50)),
        fmt(pct(xs.map((x) => x.e2e), 95)),
        fmt(Math.max(...xs.map((x) => x.e2e))),
        extra.http ?? '',
        extra.took ?? '',
        extra.ui ?? '',
        extra.dom ?? '',
        extra.note ?? '',
      ]);
    const l = samples['load:cold'];
    row('page load, cold → editor visible', l, { note: `FCP p50 ${fmt(pct(l.map((x) => x.fcp), 50))}, DOMContentLoaded p50 ${fmt(pct(l.map((x) => x.dcl), 50))}` });
    const w = samples['load:warm'];
    row('page load, warm reload → editor', w, { note: `FCP p50 ${fmt(pct(w.map((x) => x.fcp), 50))}` });
    for (const s of QUERIES) {
      const xs = samples[`search:${s.name}`];
      const a = answers[s.name];
      row(`search: ${s.name}`, xs, {
        http: fmt(pct(xs.map((x) => x.http), 50)),
        took: fmt(pct(xs.map((x) => x.took), 50)),
        ui: fmt(pct(xs.map((x) => x.e2e - x.http), 50)),
        dom: fmt(pct(xs.map((x) => x.dom), 50)),
        note: `${a.vis}, ${xs[0]?.rows ?? 0} rows shown of ${a.total}${a.rel === 'gte' ? '+' : ''}${xs[0]?.requests > 1 ? `, ${xs[0].requests} requests` : ''}`,
      });
    }
    const g = samples.graph;
    row(`graph: blast radius ${host}, 2 hops`, g, {
      http: fmt(pct(g.map((x) => x.http), 50)),
      took: fmt(pct(g.map((x) => x.took), 50)),
      ui: fmt(pct(g.map((x) => x.e2e - x.http), 50)),
      dom: fmt(pct(g.map((x) => x.dom), 50)),
      note: `${g[0]?.nodes ?? 0} nodes${g.some((x) => !x.viaRender) ? `, ${g.filter((x) => !x.viaRender).length} without a render event` : ''}`,
    });

    const cpu = cpus();
    console.log('');
    console.log(`Vigil UI benchmark — ${new Date().toISOString()}`);
    console.log(
      `machine: nproc ${cpu.length} (${cpu[0]?.model.trim()}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, load avg ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}; Chromium ${version} headless; PostgreSQL ${pg}; Node ${process.version}`,
    );
    console.log(`data: ${events} events, ${connections} connections (vigil up --demo-events ${DEMO_EVENTS}); ${RUNS} runs after ${WARMUP} warm-ups, ${benchS.toFixed(0)} s`);
    console.log('times in ms. e2e: Ctrl+Enter (or form submit, or navigation start) → result painted; http: the browser\'s request time of');
    console.log('the result\'s request(s); took: the server\'s took_ms (summed over the pages of a chart); ui = e2e − http (p50 of the differences);');
    console.log('dom: the same start → the result in the DOM (before the frame that paints it; for the graph, before cytoscape\'s first render).');
    console.log('');
    console.log(table(['scenario', 'n', 'e2e p50', 'p95', 'max', 'http p50', 'took p50', 'ui p50', 'dom p50', 'notes'], rows));
    console.log('');
    if (opts.json) {
      writeFileSync(opts.json, JSON.stringify({ host, answers, samples, events: Number(events), chromium: version, nproc: cpu.length }, null, 2));
      log(`raw samples in ${opts.json}`);
    }
  } finally {
    await stack.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
