// The e2e harness: a fresh database, a real `vigil up` serving web/dist with
// demo data, API tokens, and Debian's chromium driven by playwright-core.
// Everything it starts is stopped (and the database dropped) at the end, also
// when a test fails or the run is interrupted.

import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const webDir = resolve(here, '..');
export const repoRoot = resolve(webDir, '..');
export const outputDir = join(webDir, 'test-output');
export const screenshotDir = join(outputDir, 'screenshots');

const ADMIN_URL = process.env.VIGIL_TEST_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** The vigil binary: $VIGIL_BIN, else ${CARGO_TARGET_DIR:-<repo>/target}/debug/vigil. */
export function findVigil() {
  const candidates = process.env.VIGIL_BIN
    ? [process.env.VIGIL_BIN]
    : [join(process.env.CARGO_TARGET_DIR ? resolve(repoRoot, process.env.CARGO_TARGET_DIR) : join(repoRoot, 'target'), 'debug', 'vigil')];
  for (const c of candidates) if (existsSync(c)) return c;
  throw new Error(
    `e2e: no vigil binary at ${candidates.join(' or ')}. Build it with \`cargo build -p vigil-api --bin vigil\` ` +
      'from the repository root, or point VIGIL_BIN at one.',
  );
}

function checkPrerequisites() {
  if (!existsSync(join(webDir, 'dist', 'index.html')))
    throw new Error('e2e: web/dist/index.html is missing; run `npm run build` in web/ first.');
  if (!existsSync(CHROMIUM))
    throw new Error(`e2e: no chromium at ${CHROMIUM}; install it with \`apt-get install -y chromium\` (or set CHROMIUM_PATH).`);
}

function psql(sql) {
  execFileSync('psql', [ADMIN_URL, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { stdio: ['ignore', 'pipe', 'pipe'] });
}

function databaseUrl(name) {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

async function waitForHealth(base, child, deadline) {
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`e2e: vigil exited with status ${child.exitCode}; see test-output/vigil.log`);
    try {
      const r = await fetch(`${base}/health`);
      if (r.ok) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('e2e: vigil did not become healthy in time; see test-output/vigil.log');
}

/**
 * Starts everything; returns { base, tokens, browser, newPage(role), stop() }.
 * `demoEvents` (default 5000, what the tests use) sizes `vigil up --demo-events`.
 */
export async function startStack({ demoEvents = 5000 } = {}) {
  checkPrerequisites();
  const vigil = findVigil();
  mkdirSync(screenshotDir, { recursive: true });
  const dbName = `vigil_e2e_${process.pid}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'vigil-e2e-'));
  const state = { child: null, browser: null, dbCreated: false, dataDir, dbName, stopped: false };

  const stop = async () => {
    if (state.stopped) return;
    state.stopped = true;
    try {
      await state.browser?.close();
    } catch {
      /* already gone */
    }
    if (state.child && state.child.exitCode === null) {
      const exited = new Promise((r) => state.child.once('exit', r));
      state.child.kill('SIGTERM');
      const timer = setTimeout(() => state.child.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(timer);
    }
    if (state.dbCreated) {
      try {
        psql(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      } catch (e) {
        console.error(`e2e: could not drop ${dbName}: ${e.message}`);
      }
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  // A crash or Ctrl-C must not leave a server or a database behind.
  const onExit = () => {
    if (state.child && state.child.exitCode === null) state.child.kill('SIGKILL');
    if (state.dbCreated && !state.stopped) {
      try {
        psql(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      } catch {
        /* best effort */
      }
    }
  };
  process.once('exit', onExit);
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => (onExit(), process.exit(130)));

  try {
    psql(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    psql(`CREATE DATABASE ${dbName}`);
    state.dbCreated = true;
    const url = databaseUrl(dbName);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const log = createWriteStream(join(outputDir, 'vigil.log'));
    const child = spawn(
      vigil,
      ['up', '--database-url', url, '--listen', `127.0.0.1:${port}`, '--demo-events', String(demoEvents), '--data-dir', dataDir],
      {
        // A 1 s hunt settle lets a test ingest events and see a hunt match them at once.
        // The tests' webhook receivers listen on loopback, which webhooks may reach only when allowed.
        env: {
          ...process.env,
          VIGIL_WEB_DIR: join(webDir, 'dist'),
          VIGIL_HUNT_SETTLE_S: '1',
          VIGIL_WEBHOOK_ALLOW: '127.0.0.0/8',
          RUST_LOG: process.env.RUST_LOG ?? 'warn',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    state.child = child;
    // The demo hunts' first run raises alerts a few seconds after start;
    // tests that triage alerts start after it, so rows do not shift under them.
    let output = '';
    const demoHuntsRan = new Promise((resolve) => {
      child.stdout.on('data', (chunk) => {
        output += chunk;
        if (output.includes('Demo hunts: first run')) resolve(true);
      });
    });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    await waitForHealth(base, child, Date.now() + 150000);
    const ran = await Promise.race([demoHuntsRan, new Promise((r) => setTimeout(() => r(false), 60000))]);
    if (!ran) throw new Error('e2e: the demo hunts did not run within 60 s of start; see test-output/vigil.log');

    const token = (role) =>
      execFileSync(vigil, ['token', 'create', '--role', role, '--name', `e2e-${role}`, '--database-url', url], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      })
        .trim()
        .split('\n')
        .pop()
        .trim();
    const tokens = { analyst: token('analyst'), viewer: token('viewer'), ingest: token('ingest') };

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    state.browser = browser;

    /** A page already signed in with `role`'s token (sessionStorage), at `hash`. */
    const newPage = async (role, hash = '#/search') => {
      const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
      if (role) {
        await context.addInitScript((t) => {
          if (!sessionStorage.getItem('vigil.token')) sessionStorage.setItem('vigil.token', t);
        }, tokens[role]);
      }
      const page = await context.newPage();
      page.setDefaultTimeout(30000);
      const errors = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.errors = errors;
      await page.goto(`${base}/${hash}`);
      return page;
    };

    return { base, url, tokens, browser, newPage, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** A full-page screenshot under web/test-output/screenshots/. */
export async function screenshot(page, name) {
  await page.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: true });
}
