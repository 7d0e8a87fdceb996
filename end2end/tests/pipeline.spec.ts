// The 3D pipeline as a person sees it: tubes in status colours where the HUD says they are,
// particles moving on healthy tubes, a down worker red and cut, the bus red when Redis is gone.
import { test, expect } from '@playwright/test';
import { beat, freezeRedis, redisCli, reset, thawRedis } from '../harness/redis';
import { collectorSees, openInfra, workerCard } from '../harness/app';
import {
  BUS_OK, STATUS_RGB, badge, canvas, count, expectTubeColour, fingerprint, hudLabel, pixelsAround, point,
  waitForFrames,
} from '../harness/pipeline';

test.skip(({ javaScriptEnabled }) => !javaScriptEnabled, 'the 3D view needs JavaScript');

test.beforeEach(async () => {
  await reset();
  beat('music-render', 'render', 'busy');
  redisCli('RPUSH', 'queue:music-render', 'a', 'b', 'c', 'd');
  beat('video-render', 'render', 'paused');
  beat('image-render', 'render', 'idle');
  redisCli('RPUSH', 'dead_letter:queue:image-render', 'x', 'y', 'z');
  beat('ai_trade', 'trader', 'market_open');
  beat('task-watcher', 'watcher', 'trading');
  await collectorSees(
    (n) =>
      n.workers.some((w: any) => w.name === 'image-render' && w.dead_letter === 3) &&
      n.workers.some((w: any) => w.name === 'task-watcher' && w.alive),
  );
});

test('the pipeline draws each tube in its status colour', async ({ page }, testInfo) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await openInfra(page, '3d');
  await waitForFrames(page);
  await expectTubeColour(page, 'music-render', 'healthy');
  await expectTubeColour(page, 'video-render', 'paused');
  await expectTubeColour(page, 'image-render', 'degraded');
  await expectTubeColour(page, 'insta-render', 'down');
  await expectTubeColour(page, 'ai_trade', 'healthy');
  const bus = await point(page.locator('.hud'), 'data-bus');
  expect(count((await pixelsAround(page, [bus]))[0], BUS_OK), 'the bus glows cyan').toBeGreaterThan(10);
  // The cards give way to the pipeline.
  await expect(workerCard(page, 'music-render')).toBeHidden();
  // Kept as an artifact: end2end/test-results/<this test>/pipeline.png.
  const shot = testInfo.outputPath('pipeline.png');
  await page.locator('.pipeline').screenshot({ path: shot });
  await testInfo.attach('pipeline', { path: shot, contentType: 'image/png' });
  expect(errors).toEqual([]);
});

test('the HUD labels say what the cards say', async ({ page }) => {
  await openInfra(page, '3d');
  await waitForFrames(page);
  const music = hudLabel(page, 'music-render');
  await expect(music).toBeVisible();
  await expect(music).toHaveAttribute('data-status', 'healthy');
  await expect(music.locator('.hud-state')).toHaveText('⚙️ processing');
  await expect(music.locator('.hud-numbers')).toHaveText('queue 4 · dead 0');
  await expect(hudLabel(page, 'video-render').locator('.hud-state')).toHaveText('⏸ paused (trading)');
  await expect(hudLabel(page, 'image-render').locator('.hud-numbers')).toHaveText('queue 0 · dead 3');
  await expect(badge(page, 'image-render')).toHaveText('❌ 3');
  await expect(badge(page, 'image-render')).toBeVisible();
  await expect(hudLabel(page, 'insta-render').locator('.hud-state')).toHaveText('🔴 down');
  // The scene's parts are named, as the plan names them.
  await expect(page.locator('.hud-part')).toHaveText(['NAS server · gateway', 'Redis queue bus', 'Windows node']);
  for (const part of await page.locator('.hud-part').all()) await expect(part).toBeVisible();
  await expect(hudLabel(page, 'insta-render').locator('.hud-beat')).toHaveText(/^⚠ (no heartbeat|last beat \d+s ago)$/);
  await expect(hudLabel(page, 'ai_trade').locator('.hud-state')).toHaveText('📈 market open');
  await expect(hudLabel(page, 'task-watcher').locator('.hud-state')).toHaveText('🟢 idle');
  // Every label is on screen and none covers another.
  const boxes = await page.locator('.hud-label').evaluateAll((els) =>
    els.map((e) => {
      const r = e.getBoundingClientRect();
      return { visible: getComputedStyle(e).visibility === 'visible', x: r.x, y: r.y, w: r.width, h: r.height };
    }),
  );
  expect(boxes.filter((b) => b.visible)).toHaveLength(6);
  expectNoOverlap(boxes.filter((b) => b.visible));
});

test('particles flow on a healthy tube and stand still on a down one', async ({ page }) => {
  await openInfra(page, '3d');
  await waitForFrames(page);
  const healthy = await point(hudLabel(page, 'music-render'), 'data-probe');
  const down = await point(hudLabel(page, 'insta-render'), 'data-probe');
  // A square wider than the particle spacing always holds a particle or two.
  const seen = { healthy: new Set<string>(), down: new Set<string>() };
  for (let i = 0; i < 5; i++) {
    seen.healthy.add(await fingerprint(page, healthy, 30));
    seen.down.add(await fingerprint(page, down, 30));
    await page.waitForTimeout(150);
  }
  expect(seen.healthy.size, 'the busy tube moves').toBeGreaterThan(1);
  expect(seen.down.size, 'the down tube is still').toBe(1);
});

test('a worker going down turns red and breaks, then recovers', async ({ page }) => {
  await openInfra(page, '3d');
  await waitForFrames(page);
  await expectTubeColour(page, 'music-render', 'healthy');
  await expect(hudLabel(page, 'music-render')).not.toHaveAttribute('data-cut', /./);

  redisCli('DEL', 'worker:music-render:heartbeat');
  const label = hudLabel(page, 'music-render');
  await expect(label).toHaveAttribute('data-status', 'down', { timeout: 5_000 });
  await expect(label.locator('.hud-beat')).toHaveText(/^⚠ last beat \d+s ago$/);
  await expectTubeColour(page, 'music-render', 'down');
  // At the cut there is no tube: no red around it, only sparks and background.
  const cut = await point(label, 'data-cut');
  const [around] = await pixelsAround(page, [cut], 3);
  expect(count(around, STATUS_RGB.down), 'the tube is broken at the cut').toBe(0);

  beat('music-render', 'render', 'idle');
  await expect(label).toHaveAttribute('data-status', 'healthy', { timeout: 5_000 });
  await expectTubeColour(page, 'music-render', 'healthy');
  await expect(label).not.toHaveAttribute('data-cut', /./);
});

test('dead letters appear on a badge and go when cleared', async ({ page }) => {
  await openInfra(page, '3d');
  await waitForFrames(page);
  await expect(badge(page, 'music-render')).toHaveCount(0);
  redisCli('RPUSH', 'dead_letter:queue:music-render', 'bad');
  await expect(badge(page, 'music-render')).toHaveText('❌ 1', { timeout: 5_000 });
  await expectTubeColour(page, 'music-render', 'degraded');
  redisCli('DEL', 'dead_letter:queue:music-render');
  await expect(badge(page, 'music-render')).toHaveCount(0, { timeout: 5_000 });
});

test('losing Redis turns the bus red with an overlay, and both clear', async ({ page }) => {
  await openInfra(page, '3d');
  await waitForFrames(page);
  const bus = await point(page.locator('.hud'), 'data-bus');
  freezeRedis();
  try {
    await expect(page.locator('.overlay-down')).toContainText('aggregator disconnected', { timeout: 8_000 });
    await expect
      .poll(async () => count((await pixelsAround(page, [bus]))[0], STATUS_RGB.down))
      .toBeGreaterThan(10);
  } finally {
    thawRedis();
  }
  await expect(page.locator('.overlay-down')).toHaveCount(0, { timeout: 8_000 });
  await expect.poll(async () => count((await pixelsAround(page, [bus]))[0], BUS_OK)).toBeGreaterThan(10);
});

test('dragging orbits the camera and a double-click puts it back', async ({ page }) => {
  await openInfra(page, '3d');
  await waitForFrames(page);
  const label = hudLabel(page, 'video-render');
  const start = await label.evaluate((e) => e.style.transform);
  const box = (await canvas(page).boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 + 120, box.y + box.height / 2 + 40, { steps: 6 });
  await page.mouse.up();
  await expect.poll(() => label.evaluate((e) => e.style.transform)).not.toEqual(start);
  await canvas(page).dblclick();
  await expect.poll(() => label.evaluate((e) => e.style.transform)).toEqual(start);
  // The wheel zooms instead of scrolling the page. The double-click may have scrolled the canvas
  // fully into view (the fleet chart sits above it), so measure from where the page is now.
  const scrolled = await page.evaluate(() => window.scrollY);
  const at = (await canvas(page).boundingBox())!;
  await page.mouse.move(at.x + at.width / 2, at.y + at.height / 2);
  await page.mouse.wheel(0, -400);
  await expect.poll(() => label.evaluate((e) => e.style.transform)).not.toEqual(start);
  expect(await page.evaluate(() => window.scrollY)).toBe(scrolled);
});

test('the toggle switches views and is remembered; ?view= forces one', async ({ page }) => {
  await openInfra(page);
  await expect(canvas(page)).toBeVisible();
  await page.getByRole('button', { name: '2D cards' }).click();
  await expect(canvas(page)).toHaveCount(0);
  await expect(workerCard(page, 'music-render')).toBeVisible();
  await page.reload();
  await expect(page.getByRole('button', { name: '2D cards' })).toHaveAttribute('aria-pressed', 'true');
  await expect(canvas(page)).toHaveCount(0);
  await openInfra(page, '3d');
  await waitForFrames(page);
  await expect(workerCard(page, 'music-render')).toBeHidden();
  await page.getByRole('button', { name: '3D pipeline' }).click();
  await openInfra(page, '2d');
  await expect(page.getByRole('button', { name: '2D cards' })).toHaveAttribute('aria-pressed', 'true');
  await expect(canvas(page)).toHaveCount(0);
  await openInfra(page);
  await expect(canvas(page)).toBeVisible();
});

test('a phone starts on the cards; ?view=3d still shows the pipeline', async ({ browser }) => {
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  try {
    const page = await phone.newPage();
    await openInfra(page);
    await expect(page.getByRole('button', { name: '2D cards' })).toHaveAttribute('aria-pressed', 'true');
    await expect(workerCard(page, 'music-render')).toBeVisible();
    await expect(canvas(page)).toHaveCount(0);
    await openInfra(page, '3d');
    await waitForFrames(page);
    await expect(hudLabel(page, 'music-render')).toBeVisible();
  } finally {
    await phone.close();
  }
});

test('200 workers: labels never overlap and every problem is labelled', async ({ page }) => {
  const names: string[] = [];
  for (let i = 0; i < 194; i++) names.push(`gpu-${String(i).padStart(3, '0')}`);
  for (const [i, name] of names.entries()) beat(name, 'render', i % 3 ? 'idle' : 'busy');
  redisCli('RPUSH', 'dead_letter:queue:gpu-150', 'x');
  await collectorSees((n) => n.workers.length === 200);
  // Seen alive first, then gone: a discovered worker that went down stays on the page.
  redisCli('DEL', 'worker:gpu-077:heartbeat');
  await collectorSees((n) => n.workers.some((w: any) => w.name === 'gpu-077' && !w.alive));
  await openInfra(page, '3d');
  await waitForFrames(page);
  const boxes = await page.locator('.hud-label').evaluateAll((els) =>
    els.map((e) => {
      const r = e.getBoundingClientRect();
      return {
        name: e.getAttribute('data-worker'),
        status: e.getAttribute('data-status'),
        visible: getComputedStyle(e).visibility === 'visible',
        x: r.x, y: r.y, w: r.width, h: r.height,
      };
    }),
  );
  expect(boxes.length).toBeGreaterThanOrEqual(199);
  const shown = boxes.filter((b) => b.visible);
  expectNoOverlap(shown);
  for (const b of boxes.filter((b) => b.status !== 'healthy')) expect(b.visible, `${b.name} is labelled`).toBe(true);
  await expect(badge(page, 'gpu-150')).toHaveText('❌ 1');
  await expect(hudLabel(page, 'gpu-077')).toHaveClass(/compact/);
  await expect(hudLabel(page, 'gpu-077')).toContainText('⚠ gpu-077 last beat');
});

function expectNoOverlap(boxes: { x: number; y: number; w: number; h: number }[]): void {
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i];
      const b = boxes[j];
      const overlap = a.x < b.x + b.w - 0.5 && b.x < a.x + a.w - 0.5 && a.y < b.y + b.h - 0.5 && b.y < a.y + a.h - 0.5;
      expect(overlap, `labels ${i} and ${j} overlap`).toBe(false);
    }
  }
}
