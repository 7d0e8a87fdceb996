// Each state of SPEC §4 as a person sees it on the cards: label, status word, icon and colour.
import { test, expect } from '@playwright/test';
import { beat, freezeRedis, redisCli, reset, thawRedis } from '../harness/redis';
import { collectorSees, openInfra, workerCard } from '../harness/app';

const colours = {
  healthy: 'rgb(34, 197, 94)',
  paused: 'rgb(245, 158, 11)',
  degraded: 'rgb(234, 179, 8)',
  down: 'rgb(239, 68, 68)',
};

test.beforeEach(async () => {
  await reset();
  beat('music-render', 'render', 'busy');
  beat('video-render', 'render', 'paused');
  redisCli('SET', 'queue:paused', '1', 'EX', '60');
  beat('image-render', 'render', 'idle');
  redisCli('RPUSH', 'dead_letter:queue:image-render', 'a', 'b', 'c');
  beat('task-watcher', 'watcher', 'trading', 0, { mode: 'earnings' });
  beat('ai_trade', 'trader', 'market_closed');
  beat('gpu-7', 'render', 'idle');
  // gpu-7 is written last and a discovered worker is remembered across tests: wait for its beat,
  // which the collector reads in the same pipeline before the lists.
  await collectorSees(
    (n) =>
      n.paused &&
      n.workers.some((w: any) => w.name === 'gpu-7' && w.alive) &&
      n.workers.some((w: any) => w.name === 'image-render' && w.dead_letter === 3),
  );
});

test('every state reads right on its card', async ({ page }) => {
  await openInfra(page, '2d');
  const cases: [string, string, string, keyof typeof colours][] = [
    ['music-render', '⚙️ processing', '✔ healthy', 'healthy'],
    ['video-render', '⏸ paused (trading)', '⏸ paused', 'paused'],
    ['image-render', '🟢 idle', '❌ degraded', 'degraded'],
    ['insta-render', '🔴 down', '⚠ down', 'down'],
    ['task-watcher', '🟢 idle', '✔ healthy', 'healthy'],
    ['ai_trade', '🌙 market closed', '✔ healthy', 'healthy'],
    ['gpu-7', '🟢 idle', '✔ healthy', 'healthy'],
  ];
  for (const [name, label, status, colour] of cases) {
    const card = workerCard(page, name);
    await expect(card.locator('.state'), name).toHaveText(label);
    await expect(card.locator('.status'), name).toHaveText(status);
    await expect(card.locator('.status'), name).toHaveCSS('color', colours[colour]);
  }
  await expect(workerCard(page, 'image-render').locator('.dead')).toHaveText('3');
  await expect(workerCard(page, 'gpu-7')).toContainText('discovered');
  await expect(page.locator('.banner.paused')).toHaveText('⏸ queues paused (earnings)');
});

test('losing Redis shows the banner, and it clears when Redis is back', async ({ page, javaScriptEnabled }) => {
  await openInfra(page, '2d');
  await expect(page.locator('.banner.down')).toHaveCount(0);
  freezeRedis();
  try {
    if (javaScriptEnabled) {
      await expect(page.locator('.banner.down')).toContainText('aggregator / Redis disconnected', { timeout: 8_000 });
    } else {
      await collectorSees((n) => !n.redis_ok);
      await page.reload();
      await expect(page.locator('.banner.down')).toContainText('data stale since');
    }
    // The last good data stays on screen.
    await expect(workerCard(page, 'music-render').locator('.state')).toHaveText('⚙️ processing');
  } finally {
    thawRedis();
  }
  if (javaScriptEnabled) {
    await expect(page.locator('.banner.down')).toHaveCount(0, { timeout: 8_000 });
  } else {
    await collectorSees((n) => n.redis_ok);
    await page.reload();
    await expect(page.locator('.banner.down')).toHaveCount(0);
  }
});
