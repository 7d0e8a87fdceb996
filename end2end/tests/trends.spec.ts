// Trends (SPEC §11): each card's sparkline of its last hour, the fleet's chart atop /infra, and
// a worker's own page with its charts over 1h / 24h / 30d — server-drawn SVG, so the same with
// JavaScript on and off.
import { test, expect } from '@playwright/test';
import { beat } from '../harness/redis';
import { baseUrl, collectorSees, workerCard } from '../harness/app';

/** A worker of its own (the server's memory outlives FLUSHALL between tests) that did 7 jobs
 *  and failed 2 since the collector first saw it. */
async function busyWorker(tag: string): Promise<string> {
  const name = `trend-${tag}-${Math.random().toString(36).slice(2, 8)}`;
  beat(name, 'render', 'busy', 0, { jobs_done: 5, jobs_failed: 1 });
  await collectorSees((n) => n.workers.some((w: any) => w.name === name && w.jobs_done === 5));
  // a cycle more, so the first counters are the baseline
  await new Promise((r) => setTimeout(r, 600));
  beat(name, 'render', 'busy', 0, { jobs_done: 12, jobs_failed: 3 });
  await collectorSees((n) => n.workers.some((w: any) => w.name === name && w.jobs_done === 12));
  await new Promise((r) => setTimeout(r, 600));
  return name;
}

test('a card shows its last hour as a sparkline and links to the worker page', async ({ page }, info) => {
  const name = await busyWorker('card');
  await page.goto(`${baseUrl()}/infra?view=2d&q=${name}`);
  const spark = workerCard(page, name).locator('svg.spark');
  await expect(spark).toHaveAttribute('data-done', '7');
  await expect(spark).toHaveAttribute('data-failed', '2');
  await expect(spark.locator('path.done')).toHaveAttribute('d', /^M/);
  // the fleet's last hour sits atop the page
  await expect(page.locator('.fleet-trend figure.chart-jobs svg path.done')).toHaveAttribute('d', /^M/);
  if (info.project.name === 'js-on') {
    // the hydrated page redraws it in place as more jobs are done (read every fifth refresh)
    test.setTimeout(60_000);
    beat(name, 'render', 'busy', 0, { jobs_done: 15, jobs_failed: 3 });
    await expect(spark).toHaveAttribute('data-done', '10', { timeout: 25_000 });
  }
  await workerCard(page, name).locator('.name a').click();
  await expect(page).toHaveURL(new RegExp(`/infra/worker/${name}$`));
  await expect(page.locator('h1')).toContainText(name);
});

test('a worker page charts done, failed, queue depth and liveness over each range', async ({ page }) => {
  const name = await busyWorker('page');
  await page.goto(`${baseUrl()}/infra/worker/${name}`);
  await expect(page.locator('.worker-now .jobs')).toHaveText('12 / 3');
  const jobs = page.locator('figure.chart-jobs');
  await expect(jobs).toHaveAttribute('data-range', '1h');
  await expect(jobs.locator('path.done')).toHaveAttribute('d', /^M[\d.]+ [\d.]+v-/);
  await expect(jobs.locator('path.failed')).toHaveAttribute('d', /^M/);
  // the step the growth fell in (a newer, empty one may follow it at a minute's turn)
  await expect(jobs.locator('rect.tip title', { hasText: '7 done, 2 failed' })).toHaveCount(1);
  await expect(page.locator('figure.chart-depth path.depth')).toHaveAttribute('d', /^M/);
  await expect(page.locator('figure.chart-alive rect.alive')).not.toHaveCount(0);
  await expect(page.locator('.alerts-range')).toBeVisible();
  // another range, by link: the same steps folded into quarter hours
  await page.locator('nav.ranges a[data-range="24h"]').click();
  await expect(page).toHaveURL(/range=24h/);
  await expect(page.locator('figure.chart-jobs')).toHaveAttribute('data-range', '24h');
  await expect(page.locator('figure.chart-jobs rect.tip title', { hasText: '7 done, 2 failed' })).toHaveCount(1);
  await page.goto(`${baseUrl()}/infra/worker/${name}?range=30d`);
  await expect(page.locator('figure.chart-jobs')).toHaveAttribute('data-range', '30d');
  // a worker that is not there says so, and has no data
  await page.goto(`${baseUrl()}/infra/worker/nobody-here-at-all`);
  await expect(page.locator('.gone')).toBeVisible();
  await expect(page.locator('.chart-empty')).toBeVisible();
});
