import { test, expect } from '@playwright/test';
import { beat, redisCli, reset } from '../harness/redis';
import { collectorSees, expectFleetCards, openInfra, workerCard } from '../harness/app';

test.beforeEach(async () => {
  await reset();
  beat('image-render', 'render', 'busy', 2);
  beat('insta-render', 'render', 'idle', 1);
  redisCli('RPUSH', 'queue:image-render', 'a', 'b', 'c');
  redisCli('RPUSH', 'dead_letter:queue:insta-render', 'x', 'y');
  beat('ai_trade', 'trader', 'market_open');
  await collectorSees(
    (n) =>
      n.workers.some((w: any) => w.name === 'insta-render' && w.alive && w.dead_letter === 2) &&
      n.workers.some((w: any) => w.name === 'ai_trade' && w.alive),
  );
});

test('server renders a card per worker on first paint', async ({ page }) => {
  await openInfra(page, '2d');
  await expect(page).toHaveTitle('Infra — NODE PIPELINE');
  await expectFleetCards(page);

  const image = workerCard(page, 'image-render');
  await expect(image.locator('.state')).toHaveText('⚙️ processing');
  await expect(image.locator('.queue')).toHaveText('3');
  await expect(image).toHaveAttribute('data-status', 'healthy');

  const insta = workerCard(page, 'insta-render');
  await expect(insta.locator('.dead')).toHaveText('2');
  await expect(insta).toHaveAttribute('data-status', 'degraded');
  await expect(insta.locator('.status')).toHaveText('❌ degraded');

  const video = workerCard(page, 'video-render');
  await expect(video.locator('.state')).toHaveText('🔴 down');
  // "no heartbeat" until this server has seen one; earlier tests may have beaten video-render.
  await expect(video.locator('.age')).toHaveText(/^(no heartbeat|last beat \d+s ago)$/);
  await expect(video.locator('.status')).toHaveText('⚠ down');
  await expect(image.locator('.jobs')).toHaveText('5 / 0');

  await expect(workerCard(page, 'ai_trade').locator('.state')).toHaveText('📈 market open');
});

test('a state change shows without a reload once hydrated', async ({ page, javaScriptEnabled }) => {
  test.skip(!javaScriptEnabled, 'live refresh needs JavaScript');
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await openInfra(page, '2d');
  await expect(workerCard(page, 'video-render')).toHaveAttribute('data-status', 'down');
  beat('video-render', 'render', 'paused');
  await expect(workerCard(page, 'video-render').locator('.state')).toHaveText('⏸ paused (trading)', { timeout: 8_000 });
  await expect(workerCard(page, 'video-render')).toHaveAttribute('data-status', 'paused');
  expect(errors, 'no script errors while hydrating and polling').toEqual([]);
});

// The page's clock is stopped (Playwright's fake timers), so its 3-s poll cannot fire: a change
// that still shows came through the push stream.
test('the push stream brings a change without waiting for the poll', async ({ page, javaScriptEnabled }) => {
  test.skip(!javaScriptEnabled, 'the stream needs JavaScript');
  await page.clock.install();
  const stream = page.waitForResponse((r) => r.url().endsWith('/api/agent-office/nodes/stream'));
  await openInfra(page, '2d');
  expect((await stream).headers()['content-type']).toBe('text/event-stream');
  await expect(page.getByRole('button', { name: '2D cards' })).toBeVisible();
  await page.clock.pauseAt(Date.now() + 100);
  beat('video-render', 'render', 'busy');
  await expect(workerCard(page, 'video-render').locator('.state')).toHaveText('⚙️ processing', { timeout: 5_000 });
});

test('without the push stream the poll still refreshes the cards', async ({ page, javaScriptEnabled }) => {
  test.skip(!javaScriptEnabled, 'polling needs JavaScript');
  await page.route('**/api/agent-office/nodes/stream', (route) => route.abort());
  await page.clock.install();
  await openInfra(page, '2d');
  await expect(page.getByRole('button', { name: '2D cards' })).toBeVisible();
  await page.clock.pauseAt(Date.now() + 100);
  // A poll the page's timer started just before the pause may still be in flight (a local
  // answer takes milliseconds): let it land before the worker changes, so that only the next
  // timer can bring the change.
  await page.waitForTimeout(500);
  beat('video-render', 'render', 'busy');
  await collectorSees((n) => n.workers.some((w: any) => w.name === 'video-render' && w.state === 'busy'));
  // Nothing can refresh the page while its clock stands still and the stream is gone…
  await page.waitForTimeout(1_500);
  await expect(workerCard(page, 'video-render').locator('.state')).toHaveText('🔴 down');
  // …until the 3-s timer fires.
  await page.clock.runFor(3_500);
  await expect(workerCard(page, 'video-render').locator('.state')).toHaveText('⚙️ processing', { timeout: 5_000 });
});

test('a worker that went down says when it last beat', async ({ page }) => {
  beat('music-render', 'render', 'idle');
  await collectorSees((n) => n.workers.some((w: any) => w.name === 'music-render' && w.alive));
  redisCli('DEL', 'worker:music-render:heartbeat');
  await collectorSees((n) => n.workers.some((w: any) => w.name === 'music-render' && !w.alive));
  await openInfra(page, '2d');
  const card = workerCard(page, 'music-render');
  await expect(card.locator('.state')).toHaveText('🔴 down');
  await expect(card.locator('.age')).toHaveText(/^last beat \d+s ago$/);
});
