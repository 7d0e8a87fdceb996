import { test, expect } from '@playwright/test';
import { beat, reset } from '../harness/redis';
import { collectorSees, expectFleetCards, nginxUrl, openInfra, workerCard } from '../harness/app';
import { expectTubeColour, hudLabel, waitForFrames } from '../harness/pipeline';

test.beforeEach(async () => {
  await reset();
  beat('music-render', 'render', 'idle');
  await collectorSees((n) => n.workers.some((w: any) => w.name === 'music-render' && w.alive));
});

test('the page works the same behind nginx', async ({ page, javaScriptEnabled }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await openInfra(page, '2d', nginxUrl());
  await expectFleetCards(page);
  await expect(workerCard(page, 'music-render').locator('.state')).toHaveText('🟢 idle');
  if (javaScriptEnabled) {
    beat('music-render', 'render', 'busy');
    await expect(workerCard(page, 'music-render').locator('.state')).toHaveText('⚙️ processing', { timeout: 8_000 });
  }
  expect(errors).toEqual([]);
});

test('the 3D pipeline draws behind nginx too', async ({ page, javaScriptEnabled }) => {
  test.skip(!javaScriptEnabled, 'the 3D view needs JavaScript');
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await openInfra(page, '3d', nginxUrl());
  await waitForFrames(page);
  await expect(hudLabel(page, 'music-render').locator('.hud-state')).toHaveText('🟢 idle');
  await expectTubeColour(page, 'music-render', 'healthy');
  await expectTubeColour(page, 'video-render', 'down');
  expect(errors).toEqual([]);
});

test('nginx serves the bundle pre-compressed with a year of cache, and the push stream', async ({ page }) => {
  await openInfra(page, '2d', nginxUrl());
  const css = await page.locator('link#leptos').getAttribute('href');
  expect(css).toMatch(/^\/pkg\/agent-office\.[\w-]+\.css$/);
  const response = await fetch(`${nginxUrl()}${css}`, { headers: { 'accept-encoding': 'gzip' } });
  expect(response.status).toBe(200);
  expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
  expect(response.headers.get('content-encoding')).toBe('gzip');
  expect(await response.text()).toContain('--accent');
  const api = await fetch(`${nginxUrl()}/api/agent-office/nodes`);
  expect(api.headers.get('content-type')).toBe('application/json');
  expect((await api.json()).redis_ok).toBe(true);
  // The push stream comes through unbuffered: its first event arrives at once.
  const ctrl = new AbortController();
  try {
    const stream = await fetch(`${nginxUrl()}/api/agent-office/nodes/stream`, { signal: ctrl.signal });
    expect(stream.headers.get('content-type')).toBe('text/event-stream');
    const first = await stream.body!.getReader().read();
    expect(new TextDecoder().decode(first.value)).toContain('event: changed');
  } finally {
    ctrl.abort();
  }
});
