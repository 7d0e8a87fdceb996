// Prints what a viewer waits for and what each 3D frame costs, at 6 and at 200 workers:
// first contentful paint (the server-rendered cards), the first 3D frame, and the frame
// interval and the scene's own CPU time per frame, in headless Chromium with SwiftShader, and the
// render scale the view settled on (dynamic resolution, see app/src/pipeline/resolution.rs); and
// how long a heartbeat change takes to reach a card, with the push stream and with polling only.
import { test, expect, Page } from '@playwright/test';
import { beat, redisCli, reset } from '../harness/redis';
import { FLEET, collectorSees, openInfra, workerCard } from '../harness/app';
import { canvas, waitForFrames } from '../harness/pipeline';

const RUNS = 5;
const SAMPLE_MS = 6_000;

function fleet(size: number): void {
  reset();
  for (const name of FLEET) beat(name, name === 'ai_trade' ? 'trader' : name === 'task-watcher' ? 'watcher' : 'render', 'idle');
  for (let i = 0; i < size - FLEET.length; i++) beat(`gpu-${String(i).padStart(3, '0')}`, 'render', i % 3 ? 'idle' : 'busy');
  redisCli('RPUSH', 'dead_letter:queue:music-render', 'x');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

async function paintMs(page: Page): Promise<number> {
  return page.evaluate(() => {
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    return fcp ? fcp.startTime : NaN;
  });
}

/** rAF intervals over `ms`, recorded in the page after the scene has warmed up. */
async function frameIntervals(page: Page, ms: number): Promise<number[]> {
  return page.evaluate(
    (ms) =>
      new Promise<number[]>((done) => {
        const out: number[] = [];
        let last = 0;
        const end = performance.now() + ms;
        const tick = (t: number) => {
          if (last) out.push(t - last);
          last = t;
          if (t < end) requestAnimationFrame(tick);
          else done(out);
        };
        requestAnimationFrame(tick);
      }),
    ms,
  );
}

const rows: string[] = [];

for (const size of [6, 200]) {
  test(`${size} workers`, async ({ page, browser }) => {
    fleet(size);
    await collectorSees((n) => n.workers.length === size);

    const fcp: number[] = [];
    const firstFrame: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const cards = await browser.newPage();
      await openInfra(cards, '2d');
      await expect(workerCard(cards, 'music-render')).toBeVisible();
      fcp.push(await paintMs(cards));
      await cards.close();

      const scene = await browser.newPage();
      await openInfra(scene, '3d');
      await expect(canvas(scene)).toHaveAttribute('data-first-frame-ms', /^\d+$/, { timeout: 30_000 });
      firstFrame.push(Number(await canvas(scene).getAttribute('data-first-frame-ms')));
      await scene.close();
    }

    await openInfra(page, '3d');
    await waitForFrames(page, 30);
    // Long enough for the render scale to settle (one step per 30 frames).
    await page.waitForTimeout(8_000);
    const intervals = await frameIntervals(page, SAMPLE_MS);
    await waitForFrames(page, Number(await canvas(page).getAttribute('data-frames')) + 30);
    const cpu = Number(await canvas(page).getAttribute('data-cpu-ms'));
    const scale = Number(await canvas(page).getAttribute('data-render-scale'));
    const box = await canvas(page).boundingBox();

    rows.push(
      `| ${size} | ${Math.round(median(fcp))} ms | ${Math.round(median(firstFrame))} ms | ` +
        `${median(intervals).toFixed(1)} ms | ${quantile(intervals, 0.95).toFixed(1)} ms | ` +
        `${cpu.toFixed(2)} ms | ${Math.round(box?.width ?? 0)}×${Math.round(box?.height ?? 0)} | ${scale.toFixed(2)} |`,
    );
  });
}

/** ms from a heartbeat written to Redis until the card shows it, 6 changes, median and max. */
async function changeOnScreen(page: Page): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < 6; i++) {
    const state = i % 2 ? 'idle' : 'busy';
    const label = state === 'busy' ? '⚙️ processing' : '🟢 idle';
    const start = Date.now();
    beat('music-render', 'render', state);
    await page.waitForFunction(
      (label) => document.querySelector('article.card[data-worker="music-render"] .state')?.textContent === label,
      label,
      { polling: 20, timeout: 10_000 },
    );
    out.push(Date.now() - start);
    // Changes land at random points of the collector's and the poll's cycles.
    await page.waitForTimeout(700 + Math.random() * 2_000);
  }
  return out;
}

const changeRows: string[] = [];

for (const push of [true, false]) {
  test(`a change on screen, ${push ? 'push stream and polling' : 'polling only'}`, async ({ page }) => {
    fleet(6);
    await collectorSees((n) => n.workers.some((w: any) => w.name === 'music-render' && w.alive));
    if (!push) await page.route('**/api/agent-office/nodes/stream', (route) => route.abort());
    await openInfra(page, '2d');
    await expect(page.getByRole('button', { name: '2D cards' })).toBeVisible();
    const ms = await changeOnScreen(page);
    changeRows.push(`| ${push ? 'push stream + 3-s poll' : '3-s poll only'} | ${Math.round(median(ms))} ms | ${Math.max(...ms)} ms |`);
  });
}

test.afterAll(() => {
  console.log(
    [
      '',
      '| heartbeat written → card shows it (6 changes, collector every 250 ms) | median | max |',
      '|---|---:|---:|',
      ...changeRows,
    ].join('\n'),
  );
});

test.afterAll(() => {
  console.log(
    [
      '',
      `| workers | first cards (FCP, median of ${RUNS}) | first 3D frame (median of ${RUNS}) | frame interval median | p95 | scene CPU / frame | canvas (CSS px) | render scale |`,
      '|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...rows,
      '',
    ].join('\n'),
  );
});
