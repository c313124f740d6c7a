// End-to-end tests of the analyst UI in a real browser against a real
// `vigil up` (see harness.mjs). Run with `npm run e2e` after `npm run build`.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { screenshot, startStack } from './harness.mjs';

const T = { timeout: 60000 };
let stack;

/** Replaces the editor's text with `q` by typing, and runs it with Ctrl+Enter. */
async function typeQuery(page, q, editor = 'srql-editor') {
  const content = page.locator(`[data-testid=${editor}] .cm-content`);
  await content.click();
  await page.keyboard.press('Control+a');
  await page.keyboard.press('Delete');
  await page.keyboard.type(q, { delay: 5 });
  await page.keyboard.press('Escape'); // close the completion popup, if any
}

async function runQuery(page, q) {
  await typeQuery(page, q);
  const response = page.waitForResponse((r) => r.url().endsWith('/api/v1/search') && r.request().postDataJSON()?.query === q);
  await page.keyboard.press('Control+Enter');
  return response;
}

async function api(path, token, init = {}) {
  const r = await fetch(`${stack.base}${path}`, {
    ...init,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...(init.headers ?? {}) },
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

/** Polls `fn` until it returns a truthy value (up to `ms`, default 60 s). */
async function eventually(fn, what, ms = 60000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Stores events through the ingest API (an ingest token). */
async function ingest(events) {
  const r = await fetch(`${stack.base}/api/v1/ingest`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${stack.tokens.ingest}`, 'Content-Type': 'application/x-ndjson' },
    body: events.map((e) => JSON.stringify(e)).join('\n') + '\n',
  });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  assert.equal(body.stored, events.length, JSON.stringify(body));
}

function authEvent(host, marker) {
  return {
    id: randomUUID(),
    time: new Date().toISOString(),
    kind: 'auth',
    source: 'sshd',
    host,
    severity: 'medium',
    status_id: 2,
    user: 'root',
    message: `Failed password for root from 203.0.113.9 port 4242 ssh2 (${marker})`,
    src: { ip: '203.0.113.9', port: 4242 },
    protocol: 'ssh',
  };
}

/** Runs a hunt until its run has matched (ingestion settles for 1 s first). */
async function runUntilMatched(huntId) {
  const deadline = Date.now() + 30000;
  let total = 0;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1500));
    const r = await api(`/api/v1/hunts/${huntId}/run`, stack.tokens.analyst, { method: 'POST' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    total += r.body.matches ?? 0;
    if (total > 0) return total;
  }
  throw new Error('the hunt never matched the ingested events');
}

/** Alerts for the inbox: hunts over freshly ingested events (the demo data has none). */
async function seedAlerts() {
  const marker = `e2e-${randomUUID().slice(0, 8)}`;
  for (const [severity, hosts] of [
    ['critical', ['seed-crit-1', 'seed-crit-2']],
    ['low', ['seed-low-1']],
  ]) {
    const created = await api('/api/v1/hunts', stack.tokens.analyst, {
      method: 'POST',
      body: JSON.stringify({
        name: `seed ${severity} ${marker}`,
        query: `kind:auth status:failure "${marker}-${severity}"`,
        schedule: '@daily',
        severity,
        group_by: ['host'],
        suppression: '1h',
      }),
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await ingest(hosts.map((h) => authEvent(h, `${marker}-${severity}`)));
    await runUntilMatched(created.body.id);
  }
}

describe('vigil web UI', { timeout: 240000 }, () => {
  before(async () => {
    stack = await startStack();
  }, { timeout: 180000 });

  after(async () => {
    await stack?.stop();
  });

  test('signs in with a token, and refuses an ingest token', T, async () => {
    const page = await stack.newPage(null, '#/search');
    await page.getByTestId('signin-form').waitFor();
    await page.getByTestId('token-input').fill(stack.tokens.ingest);
    await page.getByTestId('signin-submit').click();
    await page.getByTestId('signin-error').waitFor();
    assert.match(await page.getByTestId('signin-error').innerText(), /ingest/i);

    await page.getByTestId('token-input').fill('vgl_not_a_token');
    await page.getByTestId('signin-submit').click();
    await page.waitForFunction(() => /token|unauthori/i.test(document.querySelector('[data-testid=signin-error]')?.textContent ?? ''));

    await page.getByTestId('token-input').fill(stack.tokens.analyst);
    await page.getByTestId('signin-submit').click();
    await page.getByTestId('nav').waitFor();
    assert.equal(await page.getByTestId('role').innerText(), 'analyst');
    for (const p of ['search', 'overview', 'alerts', 'hunts', 'graph', 'tail', 'agents']) assert.ok(await page.getByTestId(`nav-${p}`).isVisible(), p);
    await page.context().close();
  });

  test('types a query, sees rows, opens a row as JSON', T, async () => {
    const page = await stack.newPage('analyst', '#/search');
    const res = await runQuery(page, 'kind:process | head 20');
    assert.equal(res.status(), 200);
    const rows = page.getByTestId('result-row');
    await rows.first().waitFor();
    assert.equal(await rows.count(), 20);
    assert.match(await page.getByTestId('result-total').innerText(), /20 rows/);
    // The timeline histogram is drawn for a plain search.
    await page.getByTestId('timeline').locator('canvas').waitFor();

    await rows.first().getByTestId('row-toggle').click();
    const json = page.getByTestId('row-json');
    await json.waitFor();
    const parsed = JSON.parse(await json.innerText());
    assert.equal(parsed.kind, 'process');
    assert.ok(parsed.host, 'the row has a host');
    await screenshot(page, 'search');

    // Clicking a value's + adds it as a filter and runs again.
    const host = parsed.host;
    const next = page.waitForResponse((r) => r.url().endsWith('/api/v1/search') && (r.request().postDataJSON()?.query ?? '').includes(`host:${host}`));
    const hostCol = (await page.locator('table.results thead th').allInnerTexts()).indexOf('host');
    assert.ok(hostCol > 0, 'the table shows a host column');
    const cell = rows.first().locator('td').nth(hostCol);
    await cell.hover();
    await cell.getByTestId('filter-in').click();
    await next;
    await page.waitForFunction((h) => document.querySelector('[data-testid=srql-editor] .cm-content')?.textContent?.includes(`host:${h}`), host);
    await page.context().close();
  });

  test('j/k move through the results and Enter expands a row', T, async () => {
    const page = await stack.newPage('analyst', '#/search');
    const res = await runQuery(page, 'kind:process | head 5');
    const body = await res.json();
    const rows = page.getByTestId('result-row');
    await rows.nth(4).waitFor();
    // Keys typed in the editor stay there; leave it first.
    await page.getByTestId('result-status').click();
    await page.keyboard.press('j');
    await page.keyboard.press('j');
    await page.keyboard.press('j');
    await page.keyboard.press('k');
    assert.equal(await rows.nth(1).getAttribute('aria-selected'), 'true');
    assert.equal(await page.locator('tr.result-row.cursor').count(), 1);
    await page.keyboard.press('Enter');
    const json = page.getByTestId('row-json');
    await json.waitFor();
    assert.equal(JSON.parse(await json.innerText()).event_id, body.rows[1].event_id);
    await page.keyboard.press('Enter');
    await json.waitFor({ state: 'detached' });
    // At the ends the cursor stays put.
    for (let i = 0; i < 8; i++) await page.keyboard.press('j');
    assert.equal(await rows.nth(4).getAttribute('aria-selected'), 'true');
    await page.context().close();
  });

  test('a bad query shows the API error inline, at its span', T, async () => {
    const page = await stack.newPage('analyst', '#/search');
    const res = await runQuery(page, 'hots:web-01');
    assert.equal(res.status(), 400);
    const err = page.getByTestId('query-error');
    await err.waitFor();
    const text = await err.innerText();
    assert.match(text, /unknown field `hots`/);
    assert.match(text, /\^\^\^\^/, 'the caret drawing is shown');
    // The span is underlined in the editor.
    const underlined = page.locator('[data-testid=srql-editor] .cm-lintRange-error');
    await underlined.waitFor();
    assert.equal(await underlined.innerText(), 'hots');
    // A suggestion fixes the query and runs it.
    await page.getByTestId('suggestion').filter({ hasText: 'host' }).first().click();
    await page.getByTestId('result-status').waitFor();
    await page.context().close();
  });

  test('a stats query draws a chart', T, async () => {
    const page = await stack.newPage('analyst', '#/search');
    const res = await runQuery(page, '| stats count() by host');
    assert.equal(res.status(), 200);
    const body = await res.json();
    assert.equal(body.visualization, 'stats');
    assert.ok(body.rows.length > 1);
    await page.getByTestId('result-chart').locator('canvas').waitFor();
    assert.ok(await page.getByTestId('result-row').count() > 1);
    await page.context().close();
  });

  test('completion offers fields and pipes from the registry', T, async () => {
    const page = await stack.newPage('analyst', '#/search');
    await page.getByTestId('nav').waitFor();
    await typeQuery(page, 'in:alerts');
    await page.keyboard.type(' sev');
    const popup = page.locator('.cm-tooltip-autocomplete');
    await popup.waitFor();
    assert.match(await popup.innerText(), /severity:/);
    await page.keyboard.press('Escape');
    await page.keyboard.type(' | ');
    await page.keyboard.press('Control+Space');
    await popup.waitFor();
    assert.match(await popup.innerText(), /timechart/);
    await page.context().close();
  });

  test('the graph draws a blast radius; clicking a node pivots to search', T, async () => {
    // A host with outgoing connections in the demo data. The graph worker
    // folds events into connections a few seconds after they are stored, so
    // wait until the graph answers for it.
    const host = await eventually(async () => {
      const top = await api('/api/v1/search', stack.tokens.analyst, {
        method: 'POST',
        body: JSON.stringify({ query: 'in:connections | stats count() as n by src_host | where src_host:* | sort -n | head 1' }),
      });
      assert.equal(top.status, 200, JSON.stringify(top.body));
      const h = top.body.rows[0]?.src_host;
      if (!h) return null;
      const blast = await api(`/api/v1/graph/blast-radius?from=${encodeURIComponent(h)}&hops=2`, stack.tokens.analyst);
      return blast.status === 200 && blast.body.result.reached.length > 0 ? h : null;
    }, 'the demo data has connections in the graph');

    const page = await stack.newPage('analyst', `#/graph?from=${encodeURIComponent(host)}`);
    await page.getByTestId('graph-summary').waitFor();
    assert.match(await page.getByTestId('graph-summary').innerText(), /nodes reached/);
    await page.getByTestId('graph-canvas').locator('canvas').first().waitFor();
    const nodeCount = await page.evaluate(() => document.querySelector('[data-testid=graph-canvas]').__cy.nodes().length);
    assert.ok(nodeCount > 1, `the blast radius has nodes (${nodeCount})`);
    await screenshot(page, 'graph');

    // Click a reached node (not the start) where cytoscape drew it.
    const target = await page.evaluate(() => {
      const cy = document.querySelector('[data-testid=graph-canvas]').__cy;
      const n = cy.nodes().filter((x) => !x.hasClass('start'))[0] ?? cy.nodes()[0];
      const p = n.renderedPosition();
      return { x: p.x, y: p.y };
    });
    const box = await page.getByTestId('graph-canvas').boundingBox();
    await page.mouse.click(box.x + target.x, box.y + target.y);
    const menu = page.getByTestId('node-menu');
    await menu.waitFor();
    // Nodes may overlap: whichever was hit, the menu names it.
    const label = (await menu.locator('.node-menu-title').innerText()).trim();
    assert.ok(label.length > 0);
    const searched = page.waitForResponse((r) => r.url().endsWith('/api/v1/search'));
    await page.getByTestId('pivot-search').click();
    await searched;
    await page.waitForFunction(() => location.hash.startsWith('#/search'));
    await page.getByTestId('result-status').waitFor();
    const editorText = await page.locator('[data-testid=srql-editor] .cm-content').innerText();
    assert.ok(editorText.includes(label), `the query names the node ${label}: ${editorText}`);
    await page.context().close();
  });

  test('SIMILAR_TO shows the score column, best first; | cluster shows groups', { timeout: 120000 }, async () => {
    // The embedding worker gives events vectors in the background after
    // start (the default selection, VIGIL_EMBED_SELECT unset, embeds auth
    // events): wait through the API until SIMILAR_TO and cluster answer.
    // The demo's auth events have several "invalid user" texts: distinct scores.
    // k:100 reaches past the scripted intrusion's 31 logons, whose texts differ
    // only in what the embedding text leaves out, so they tie.
    const similar = 'kind:auth | SIMILAR_TO("invalid user login attempt", k:100)';
    const cluster = 'kind:auth | cluster';
    const search = async (query) => {
      const r = await api('/api/v1/search', stack.tokens.analyst, { method: 'POST', body: JSON.stringify({ query }) });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body;
    };
    await eventually(async () => (await search(similar)).rows.length >= 5, 'auth events have vectors (SIMILAR_TO answers)', 90000);
    await eventually(async () => (await search(cluster)).rows.length > 1, '| cluster finds more than one group', 60000);

    const page = await stack.newPage('analyst', '#/search');
    const res = await runQuery(page, similar);
    assert.equal(res.status(), 200);
    assert.equal((await res.json()).visualization, 'similarity');
    const rows = page.getByTestId('result-row');
    await rows.first().waitFor();
    // The score leads the table, drawn as a bar with its value.
    assert.equal((await page.locator('table.results thead th').allInnerTexts())[1], 'score');
    const scores = (await page.getByTestId('score-cell').allInnerTexts()).map((t) => Number(t.trim()));
    assert.ok(scores.length >= 5, `scores shown: ${scores.length}`);
    assert.equal(scores.length, await rows.count(), 'every row has a score');
    for (const sc of scores) assert.ok(sc > 0 && sc <= 1, `a cosine similarity: ${sc}`);
    for (let i = 1; i < scores.length; i++) assert.ok(scores[i] <= scores[i - 1], `sorted best first: ${scores.join(', ')}`);
    assert.ok(new Set(scores).size > 1, `more than one score: ${scores.join(', ')}`);
    assert.ok(await page.getByTestId('score-cell').first().locator('.score-bar').isVisible());
    // The nearest events are failed logins.
    const msgCol = (await page.locator('table.results thead th').allInnerTexts()).indexOf('message');
    assert.ok(msgCol > 0, 'a message column');
    assert.match(await rows.first().locator('td').nth(msgCol).innerText(), /invalid user|password|authentication failure/i);
    await screenshot(page, 'similar');

    const res2 = await runQuery(page, cluster);
    assert.equal(res2.status(), 200);
    const body = await res2.json();
    assert.equal(body.visualization, 'cluster');
    const groups = page.getByTestId('cluster-row');
    await groups.first().waitFor();
    assert.equal(await groups.count(), body.rows.length);
    assert.ok(body.rows.length > 1);
    assert.equal(await page.getByTestId('result-row').count(), 0, 'groups, not a table');
    // Each group shows its count and pattern (masked: <ip>, <num>); biggest first.
    const first = await groups.first().innerText();
    assert.ok(first.includes(body.rows[0].pattern), first);
    assert.ok(first.includes(Number(body.rows[0].count).toLocaleString('en-US')), first);
    // Expanding a group shows it as JSON, with its example event.
    await groups.first().locator('.cluster-head').click();
    await groups.first().locator('pre.json').waitFor();
    await screenshot(page, 'cluster');
    await page.context().close();
  });

  test('dragging across the timeline zooms the query to the range', T, async () => {
    const page = await stack.newPage('analyst', '#/search');
    await runQuery(page, 'kind:auth');
    const timeline = page.getByTestId('timeline');
    await timeline.locator('canvas').waitFor();
    const span = Number(await timeline.getAttribute('data-span-ms'));
    assert.ok(Number(await timeline.getAttribute('data-buckets')) > 3, 'the histogram has buckets to select');
    const box = await timeline.locator('canvas').boundingBox();
    const zoomed = page.waitForResponse((r) => r.url().endsWith('/api/v1/search') && /time:\[/.test(r.request().postDataJSON()?.query ?? ''));
    const y = box.y + box.height * 0.5;
    await page.mouse.move(box.x + box.width * 0.3, y);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.5, y, { steps: 5 });
    await page.getByTestId('brush-selection').waitFor();
    await page.mouse.move(box.x + box.width * 0.75, y, { steps: 5 });
    await page.mouse.up();
    const res = await zoomed;
    assert.equal(res.status(), 200);
    const q = res.request().postDataJSON().query;
    const m = /^kind:auth time:\[(\S+), (\S+)\]$/.exec(q);
    assert.ok(m, `the query holds a time range: ${q}`);
    const [from, to] = [Date.parse(m[1]), Date.parse(m[2])];
    assert.ok(to - from >= 2 * span, `the range spans several buckets (${(to - from) / 1000}s, bucket ${span / 1000}s), not one click`);
    // The editor shows it and the results re-ran with it.
    await page.waitForFunction((text) => document.querySelector('[data-testid=srql-editor] .cm-content')?.textContent === text, q);
    await page.waitForFunction(() => !document.querySelector('[data-testid=run-query]')?.hasAttribute('disabled'));
    const body = await res.json();
    assert.ok(body.total > 0, 'the range has events');
    await page.waitForFunction((n) => (document.querySelector('[data-testid=result-total]')?.textContent ?? '').replace(/\D/g, '') === String(n), body.total);
    for (const row of body.rows) {
      const t = Date.parse(row.time);
      assert.ok(t >= from && t <= to, `row time ${row.time} is in the range`);
    }
    // The histogram is redrawn for the new window; no selection is left behind.
    await page.getByTestId('timeline').locator('canvas').waitFor();
    assert.equal(await page.getByTestId('brush-selection').count(), 0);
    await page.context().close();
  });

  test('creates a hunt from the current query, runs it and sees the run', T, async () => {
    const page = await stack.newPage('analyst', '#/search');
    const query = 'kind:auth status:failure';
    await runQuery(page, query);
    await page.getByTestId('result-status').waitFor();
    await page.getByTestId('create-hunt-from-query').click();
    await page.getByTestId('hunt-form').waitFor();
    assert.equal(await page.locator('[data-testid=hunt-query] .cm-content').innerText(), query);

    // An aggregation is refused with the API's error, shown inline.
    await typeQuery(page, 'kind:auth | stats count() by host', 'hunt-query');
    const name = `e2e failed logins ${randomUUID().slice(0, 8)}`;
    await page.getByTestId('hunt-name').fill(name);
    await page.getByTestId('hunt-save').click();
    await page.getByTestId('hunt-error').waitFor();
    assert.match(await page.getByTestId('hunt-error').innerText(), /not_supported/);

    await typeQuery(page, query, 'hunt-query');
    await page.getByTestId('hunt-severity').selectOption('high');
    await page.getByTestId('hunt-save').click();
    const detail = page.getByTestId('hunt-detail');
    await detail.waitFor();
    assert.match(await detail.innerText(), new RegExp(name));
    await page.getByTestId('hunt-row').filter({ hasText: name }).waitFor();

    // An event that matches, stored after the hunt was created; runs search
    // what was ingested since the last one (1 s settle in the harness).
    await ingest([authEvent('e2e-hunt-host', 'hunt')]);
    await new Promise((r) => setTimeout(r, 2000));
    await page.getByTestId('hunt-run-now').click();
    await page.getByTestId('hunt-message').waitFor();
    assert.match(await page.getByTestId('hunt-message').innerText(), /Ran: \d+ match/);
    await page.getByTestId('hunt-run-row').first().waitFor();

    // Reschedule it.
    await page.getByTestId('hunt-edit').click();
    await page.getByTestId('hunt-schedule').fill('@hourly');
    await page.getByTestId('hunt-save').click();
    await page.getByTestId('hunt-row').filter({ hasText: name }).filter({ hasText: '@hourly' }).waitFor();
    await screenshot(page, 'hunts');
    await page.context().close();
  });

  test('Sigma metadata shows on hunts and alerts; the form edits webhooks', T, async () => {
    const marker = `e2e-sigma-${randomUUID().slice(0, 8)}`;
    const sigmaId = randomUUID();
    // A local webhook receiver: the webhook set in the form must be called.
    const received = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push({ url: req.url, body: JSON.parse(body || 'null') });
        res.writeHead(204).end();
      });
    });
    await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
    receiver.unref(); // a failing test must not keep the run alive
    const created = await api('/api/v1/hunts', stack.tokens.analyst, {
      method: 'POST',
      body: JSON.stringify({
        name: `Sigma: suspicious root login ${marker}`,
        query: `kind:auth status:failure "${marker}"`,
        schedule: '@daily',
        severity: 'high',
        group_by: ['host'],
        meta: {
          sigma: {
            id: sigmaId,
            title: 'Suspicious root login',
            level: 'high',
            status: 'experimental',
            author: 'e2e',
            tags: ['attack.t1110.001', 'attack.credential_access'],
            references: ['https://attack.mitre.org/techniques/T1110/001/', 'internal wiki page 42'],
          },
        },
      }),
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;

    const page = await stack.newPage('analyst', `#/hunts?id=${id}`);
    const row = page.getByTestId('hunt-row').filter({ hasText: marker });
    await row.getByTestId('sigma-badge').waitFor();
    const detail = page.getByTestId('hunt-detail');
    await detail.getByTestId('sigma-meta').waitFor();
    assert.equal(await detail.getByTestId('sigma-id').innerText(), sigmaId);
    assert.deepEqual(await detail.getByTestId('sigma-tag').allInnerTexts(), ['attack.t1110.001', 'attack.credential_access']);
    // References: an http(s) one is a link that sends no referrer; others are text.
    const link = detail.locator('a[data-testid=sigma-reference]');
    assert.equal(await link.count(), 1);
    assert.equal(await link.getAttribute('href'), 'https://attack.mitre.org/techniques/T1110/001/');
    assert.match(await link.getAttribute('rel'), /noreferrer/);
    assert.equal(await detail.locator('span[data-testid=sigma-reference]').innerText(), 'internal wiki page 42');

    // Webhooks: a bad URL is refused by the API, inline; a good one is saved.
    await page.getByTestId('hunt-edit').click();
    await page.getByTestId('hunt-webhook-add').click();
    await page.getByTestId('hunt-webhook-url').fill('not a url');
    await page.getByTestId('hunt-save').click();
    await page.getByTestId('hunt-error').waitFor();
    assert.match(await page.getByTestId('hunt-error').innerText(), /bad_action.*not an http\(s\) URL/);
    const hook = `http://127.0.0.1:${receiver.address().port}/hook/${marker}`;
    await page.getByTestId('hunt-webhook-url').fill(hook);
    await page.getByTestId('hunt-webhook-add').click();
    await page.getByTestId('hunt-webhook-url').nth(1).fill('http://127.0.0.1:9/removed');
    await page.getByTestId('hunt-webhook-remove').nth(1).click();
    await page.getByTestId('hunt-save').click();
    await page.getByTestId('hunt-form').waitFor({ state: 'detached' });
    await detail.getByTestId('hunt-action').filter({ hasText: hook }).waitFor();
    const saved = await api(`/api/v1/hunts/${id}`, stack.tokens.analyst);
    assert.deepEqual(saved.body.actions, [{ type: 'webhook', url: hook, has_secret: false }]);
    assert.equal(saved.body.meta.sigma.id, sigmaId, 'editing keeps the meta');
    await screenshot(page, 'hunt-sigma');

    // Its alert carries the hunt's meta: badge in the inbox, Sigma in the detail.
    await ingest([authEvent('e2e-sigma-host', marker)]);
    await runUntilMatched(id);
    const call = await eventually(() => received.find((r) => r.url === `/hook/${marker}`), 'the webhook was called', 20000);
    assert.equal(call.body.alert.hunt.meta.sigma.id, sigmaId, JSON.stringify(call.body));
    await page.goto(`${stack.base}/#/alerts?hunt=${id}&status=`);
    const alertRow = page.getByTestId('alert-row').first();
    await alertRow.getByTestId('sigma-badge').waitFor();
    await alertRow.locator('td').nth(2).click();
    const meta = page.getByTestId('alert-detail').getByTestId('alert-meta');
    await meta.getByTestId('sigma-id').waitFor();
    assert.equal(await meta.getByTestId('sigma-id').innerText(), sigmaId);
    assert.ok((await meta.getByTestId('sigma-tag').allInnerTexts()).includes('attack.t1110.001'));
    await page.context().close();
    receiver.close();
  });

  test('the alerts inbox lists, filters and acknowledges', T, async () => {
    await seedAlerts();
    const page = await stack.newPage('analyst', '#/alerts');
    await page.getByTestId('alerts-table').waitFor();
    await page.getByTestId('status-all').click();
    await page.getByTestId('alert-row').first().waitFor();
    const all = await page.getByTestId('alert-row').count();
    assert.ok(all > 0, 'the demo data has alerts');

    await page.getByTestId('alert-severity').selectOption('critical');
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('[data-testid=alert-row] td:nth-child(2)')];
      return rows.every((td) => /critical|fatal/.test(td.textContent ?? ''));
    });
    await page.getByTestId('alert-severity').selectOption('');

    await page.getByTestId('status-open').click();
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=alert-status]')].every((td) => td.textContent === 'open'));
    const first = page.getByTestId('alert-row').first();
    await first.waitFor();
    await first.getByTestId('alert-ack').click();
    await page.waitForFunction(() => document.querySelector('[data-testid=alert-row] [data-testid=alert-status]')?.textContent === 'acknowledged');

    await first.getByTestId('alert-assign').click();
    await page.getByTestId('alert-assign-input').fill('e2e-bob');
    await page.getByTestId('alert-assign-submit').click();
    await page.waitForFunction(() => document.querySelector('[data-testid=alert-row]')?.textContent?.includes('e2e-bob'));

    // Close another one with a reason.
    const second = page.getByTestId('alert-row').nth(1);
    await second.getByTestId('alert-close').click();
    await page.getByTestId('alert-close-input').fill('e2e: benign test traffic');
    await page.getByTestId('alert-close-submit').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=alert-row] [data-testid=alert-status]')[1]?.textContent === 'closed');

    await first.locator('td').nth(2).click();
    await page.getByTestId('alert-detail').waitFor();
    await screenshot(page, 'alerts');
    // The alert's events open in Search.
    await page.getByTestId('alert-events').click();
    await page.waitForFunction(() => location.hash.startsWith('#/search'));
    await page.getByTestId('result-row').first().waitFor();
    await page.context().close();
  });

  test('a viewer is not offered hunt creation or alert actions', T, async () => {
    const page = await stack.newPage('viewer', '#/search');
    await page.getByTestId('nav').waitFor();
    assert.equal(await page.getByTestId('role').innerText(), 'viewer');
    await runQuery(page, 'kind:process | head 5');
    await page.getByTestId('result-row').first().waitFor();
    assert.equal(await page.getByTestId('create-hunt-from-query').count(), 0);

    await page.goto(`${stack.base}/#/hunts`);
    await page.getByTestId('hunts-table').waitFor();
    await page.getByTestId('hunt-row').first().waitFor();
    assert.equal(await page.getByTestId('new-hunt').count(), 0);
    await page.getByTestId('hunt-row').first().click();
    await page.getByTestId('hunt-detail').waitFor();
    assert.equal(await page.getByTestId('hunt-run-now').count(), 0);

    await page.goto(`${stack.base}/#/alerts?status=`);
    await page.getByTestId('alert-row').first().waitFor();
    assert.equal(await page.getByTestId('alert-ack').count(), 0);
    assert.equal(await page.getByTestId('alert-close').count(), 0);
    assert.equal(await page.getByTestId('alert-assign').count(), 0);
    await page.context().close();
  });

  test('the SOC overview renders its panels', T, async () => {
    const page = await stack.newPage('analyst', '#/overview');
    const panels = ['events-total', 'alerts-open', 'events-by-severity', 'alerts-by-severity', 'top-hosts', 'top-talkers', 'vulnerable-hosts'];
    for (const p of panels) await page.getByTestId(`panel-${p}`).getByTestId('panel-ready').waitFor();
    assert.equal(await page.locator('.overview-panel .error-box').count(), 0, 'no panel failed');
    assert.ok(await page.getByTestId('panel-events-by-severity').locator('canvas').isVisible());
    assert.ok(await page.getByTestId('panel-top-hosts').locator('canvas').isVisible());
    await screenshot(page, 'overview');
    await page.context().close();
  });

  test('the agents page lists agents by their heartbeats, and vulnerabilities', T, async () => {
    const agent = `e2e-agent-${randomUUID().slice(0, 8)}`;
    const heartbeat = (ageS) => ({
      id: randomUUID(),
      time: new Date(Date.now() - ageS * 1000).toISOString(),
      kind: 'log',
      source: 'vigil-agent',
      host: agent,
      severity: 'info',
      message: 'heartbeat',
      raw: { type: 'heartbeat', agent_id: agent, version: '9.9.9-e2e', capabilities: { ebpf: true, xdp: false } },
    });
    // An online agent (heard from now) and an offline one (10 minutes ago).
    await ingest([heartbeat(0), { ...heartbeat(600), host: `${agent}-old`, raw: { ...heartbeat(600).raw, agent_id: `${agent}-old` } }]);
    const page = await stack.newPage('analyst', '#/agents');
    const row = page.getByTestId('agent-row').filter({ hasText: agent }).filter({ hasNotText: `${agent}-old` });
    await row.waitFor();
    const text = await row.innerText();
    assert.match(text, /9\.9\.9-e2e/);
    assert.match(text, /ebpf/);
    assert.doesNotMatch(text, /xdp/, 'a capability that is off is not listed');
    assert.equal((await row.getByTestId('agent-online').innerText()).trim(), 'online');
    const old = page.getByTestId('agent-row').filter({ hasText: `${agent}-old` });
    assert.equal((await old.getByTestId('agent-online').innerText()).trim(), 'offline');
    await page.getByTestId('vulns-table').waitFor();
    const vulns = await api('/api/v1/vulnerabilities', stack.tokens.analyst);
    assert.equal(vulns.status, 200);
    // (The graph worker may still be adding findings: compare what is stable.)
    const all = vulns.body.vulnerabilities;
    if (all.length > 0) {
      await page.getByTestId('vuln-row').first().waitFor();
      // Running ones first.
      if (all.some((v) => v.status === 'running')) assert.equal(await page.getByTestId('vuln-row').first().locator('td').nth(6).innerText(), 'running');
      // The status filter asks the API again.
      const asked = page.waitForResponse((r) => r.url().includes('/api/v1/vulnerabilities?') && r.url().includes('status=dormant'));
      await page.getByTestId('vuln-status-dormant').click();
      const dormant = (await (await asked).json()).vulnerabilities.length;
      if (dormant > 0) {
        await page.waitForFunction(() => {
          const cells = [...document.querySelectorAll('[data-testid=vuln-row] td:nth-child(7)')];
          return cells.length > 0 && cells.every((td) => td.textContent === 'dormant');
        });
      } else await page.getByTestId('vulns-table').getByText('No vulnerable packages with status dormant').waitFor();
    } else await page.getByTestId('vulns-table').getByText('No vulnerable packages').waitFor();
    await screenshot(page, 'agents');
    await page.context().close();
  });

  test('live tail streams newly ingested events', T, async () => {
    const page = await stack.newPage('analyst', '#/tail');
    const marker = `e2e-tail-${randomUUID().slice(0, 8)}`;
    await typeQuery(page, `host:${marker}`, 'tail-editor');
    await page.getByTestId('tail-start').click();
    await page.waitForSelector('[data-testid=tail-status][data-status=live]');

    const now = new Date().toISOString();
    const event = {
      id: randomUUID(),
      time: now,
      kind: 'auth',
      source: 'sshd',
      host: marker,
      severity: 'medium',
      status_id: 2,
      message: `Failed password for root from 203.0.113.9 (${marker})`,
      user: 'root',
    };
    const ingest = await fetch(`${stack.base}/api/v1/ingest`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${stack.tokens.ingest}`, 'Content-Type': 'application/x-ndjson' },
      body: `${JSON.stringify(event)}\n`,
    });
    assert.equal(ingest.status, 200, await ingest.text());
    const row = page.getByTestId('tail-row').first();
    await row.waitFor({ timeout: 30000 });
    assert.match(await row.innerText(), new RegExp(marker));
    await screenshot(page, 'tail');
    await page.getByTestId('tail-stop').click();
    await page.context().close();
  });
});
