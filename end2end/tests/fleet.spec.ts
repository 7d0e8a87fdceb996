// A fleet of 2,000 workers as a person sees it: problems first, a search, pages, and the 3D view
// drawing one tube per group until a group is opened. Its own Redis and server (the shared ones
// remember discovered workers for an hour, which would crowd every other test's first page).
import { test, expect } from '@playwright/test';
import { spawn, execFileSync, ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hudLabel, waitForFrames } from '../harness/pipeline';
import { freePort, serverBin, serverEnv } from '../harness/server';

const GROUPS = ['render-eu', 'render-us', 'render-ap', 'ingest'];
const PER_GROUP = 500;
let base = '';
let dir = '';
const children: ChildProcess[] = [];

function resp(...args: string[]): string {
  return `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('');
}

/** 2,000 render workers; in each group every 50th is down (a stale beat) and every 50th+1 degraded. */
function populate(port: number): void {
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const old = new Date(Date.now() - 7_200_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  let cmds = '';
  for (const g of GROUPS) {
    for (let i = 0; i < PER_GROUP; i++) {
      const name = `${g}-${String(i).padStart(4, '0')}`;
      const down = i % 50 === 7;
      const beat = JSON.stringify({ name, kind: 'render', state: 'idle', ts: down ? old : now, last_job_at: null, jobs_done: 1, jobs_failed: 0 });
      cmds += down ? resp('SET', `worker:${name}:heartbeat`, beat) : resp('SET', `worker:${name}:heartbeat`, beat, 'EX', '600');
      if (i % 50 === 8) cmds += resp('RPUSH', `dead_letter:queue:${name}`, 'job');
    }
  }
  execFileSync('redis-cli', ['-p', `${port}`, '--pipe'], { input: cmds, stdio: ['pipe', 'ignore', 'inherit'] });
}

async function until(what: string, ok: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (await ok().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not happen`);
}

test.beforeAll(async () => {
  const redisPort = await freePort();
  const httpPort = await freePort();
  dir = mkdtempSync(path.join(tmpdir(), 'ao-fleet-'));
  children.push(spawn('redis-server', ['--port', `${redisPort}`, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' }));
  await until('redis-server', async () => execFileSync('redis-cli', ['-p', `${redisPort}`, 'PING'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() === 'PONG');
  populate(redisPort);
  children.push(
    spawn(serverBin, [], { stdio: ['ignore', 'inherit', 'inherit'], env: serverEnv(redisPort, httpPort) }),
  );
  base = `http://127.0.0.1:${httpPort}`;
  await until('all 2,006 workers', async () => {
    const page = await (await fetch(`${base}/api/agent-office/nodes?limit=1`)).json();
    return page.summary.total === GROUPS.length * PER_GROUP + 6;
  });
});

test.afterAll(async () => {
  // The server first, then its Redis.
  for (const child of children.splice(0).reverse()) child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

test('the cards show problems first, page by page, and search by name', async ({ page }) => {
  await page.goto(`${base}/infra?view=2d`);
  const cards = page.locator('article.card');
  await expect(cards).toHaveCount(500);
  await expect(page.locator('.fleet-tools .range')).toHaveText('1–500 of 2,006 workers, problems first');
  // 40 fleet workers and the registry's six (no heartbeat here) are down: they lead.
  for (const status of await cards.evaluateAll((els) => els.slice(0, 46).map((e) => e.getAttribute('data-status')))) {
    expect(status).toBe('down');
  }
  await expect(cards.nth(46)).toHaveAttribute('data-status', 'degraded');

  await page.getByRole('link', { name: 'next ›' }).click();
  await expect(page.locator('.fleet-tools .range')).toHaveText('501–1,000 of 2,006 workers, problems first');
  await expect(cards).toHaveCount(500);
  await expect(cards.first()).toHaveAttribute('data-status', 'healthy');

  await page.getByRole('searchbox', { name: 'Search workers by name' }).fill('render-ap-04');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.locator('.fleet-tools .range')).toHaveText('1–100 of 100 workers, problems first');
  await expect(cards).toHaveCount(100);
  await expect(cards.first()).toHaveAttribute('data-worker', 'render-ap-0407');
  for (const name of await cards.evaluateAll((els) => els.map((e) => e.getAttribute('data-worker') ?? ''))) {
    expect(name.startsWith('render-ap-04')).toBe(true);
  }
});

test('the 3D view draws groups and opens one', async ({ page, javaScriptEnabled }) => {
  test.skip(!javaScriptEnabled, 'the 3D view needs JavaScript');
  await page.goto(`${base}/infra?view=3d`);
  await waitForFrames(page);
  for (const g of GROUPS) await expect(hudLabel(page, `${g} (${PER_GROUP})`)).toHaveCount(1);
  const us = page.locator('.groups button[data-group="render-us"]');
  await expect(us).toHaveText('render-us · 500 workers · 10 down');
  await expect(us).toHaveClass(/\bdown\b/);
  await us.click();
  await expect(page.locator('.group-chip')).toContainText('render-us');
  await expect(page.locator('.groups')).toHaveCount(0);
  // Opened: its own workers as tubes, its down ones first.
  await expect(hudLabel(page, 'render-us-0007')).toHaveCount(1);
  await expect(hudLabel(page, 'render-eu (500)')).toHaveCount(0);
  await page.getByRole('button', { name: '2D cards' }).click();
  await expect(page.locator('.fleet-tools .range')).toHaveText('1–500 of 500 workers, problems first');
  await expect(page.locator('article.card').first()).toHaveAttribute('data-worker', 'render-us-0007');
});
