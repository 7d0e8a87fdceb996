// Chromium started with --disable-webgl: no WebGL2, so /infra shows the cards on its own, says
// why, and still refreshes them.
import { test, expect } from '@playwright/test';
import { beat, reset } from '../harness/redis';
import { collectorSees, expectFleetCards, openInfra, workerCard } from '../harness/app';
import { canvas } from '../harness/pipeline';

test.beforeEach(async () => {
  await reset();
  beat('music-render', 'render', 'idle');
  await collectorSees((n) => n.workers.some((w: any) => w.name === 'music-render' && w.alive));
});

for (const view of [undefined, '3d'] as const) {
  test(`without WebGL the cards show by themselves (${view ? `?view=${view}` : 'default view'})`, async ({ page }) => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await openInfra(page, view);
    await expect(page.locator('.fallback-note')).toContainText('3D view unavailable');
    await expect(canvas(page)).toHaveCount(0);
    await expectFleetCards(page);
    await expect(workerCard(page, 'music-render')).toBeVisible();
    await expect(page.getByRole('button', { name: '3D pipeline' })).toBeDisabled();
    await expect(page.getByRole('button', { name: '2D cards' })).toHaveAttribute('aria-pressed', 'true');
    // Still live without WebGL.
    beat('music-render', 'render', 'busy');
    await expect(workerCard(page, 'music-render').locator('.state')).toHaveText('⚙️ processing', { timeout: 8_000 });
    expect(errors).toEqual([]);
  });
}
