// Korean and English as a person meets them: a Korean browser gets the plan's words from the
// first paint (JavaScript on or off), the hydrated page and the 3D labels never flip to
// English, and the switch on the page changes the language and keeps it.
import { test, expect } from '@playwright/test';
import { beat, reset } from '../harness/redis';
import { baseUrl, collectorSees, openInfra, workerCard } from '../harness/app';
import { hudLabel } from '../harness/pipeline';

test.use({ locale: 'ko-KR' });

test.beforeEach(async () => {
  await reset();
  beat('music-render', 'render', 'busy');
  beat('image-render', 'render', 'idle');
  beat('ai_trade', 'trader', 'market_closed');
  await collectorSees((n) => n.workers.some((w: any) => w.name === 'ai_trade' && w.alive));
});

test('a Korean browser reads the plan’s words from the first paint', async ({ page, javaScriptEnabled }) => {
  await openInfra(page, '2d');
  await expect(page.locator('html')).toHaveAttribute('lang', 'ko');
  await expect(workerCard(page, 'music-render').locator('.state')).toHaveText('⚙️ 처리 중');
  await expect(workerCard(page, 'image-render').locator('.state')).toHaveText('🟢 대기');
  await expect(workerCard(page, 'ai_trade').locator('.state')).toHaveText('🌙 휴장');
  await expect(workerCard(page, 'video-render').locator('.state')).toHaveText('🔴 다운');
  await expect(workerCard(page, 'video-render').locator('.age')).toHaveText(/^(하트비트 없음|마지막 하트비트 \d+초 전)$/);
  if (javaScriptEnabled) {
    // Hydrated (the view buttons show), and still Korean; a refresh brings Korean words too.
    await expect(page.getByRole('button', { name: '2D 카드' })).toBeVisible();
    await expect(workerCard(page, 'image-render').locator('.state')).toHaveText('🟢 대기');
    beat('image-render', 'render', 'busy');
    await expect(workerCard(page, 'image-render').locator('.state')).toHaveText('⚙️ 처리 중', { timeout: 8_000 });
  }
});

test('the 3D labels speak the page’s language', async ({ page, javaScriptEnabled }) => {
  test.skip(!javaScriptEnabled, 'the 3D view needs JavaScript');
  await openInfra(page, '3d');
  await expect(hudLabel(page, 'image-render').locator('.hud-state')).toHaveText('🟢 대기');
  await expect(page.locator('.hud-part')).toHaveText(['NAS 서버 · 게이트웨이', 'Redis 큐 버스', 'Windows 노드']);
  await expect(hudLabel(page, 'video-render').locator('.hud-beat')).toHaveText(/^⚠ (하트비트 없음|마지막 하트비트 \d+초 전)$/);
});

test('the switch changes the language and keeps it', async ({ page }) => {
  await page.goto(`${baseUrl()}/infra?view=2d`);
  await page.locator('nav.lang a[hreflang="en"]').click();
  await expect(page.locator('html')).toHaveAttribute('lang', 'en');
  await expect(workerCard(page, 'image-render').locator('.state')).toHaveText('🟢 idle');
  // Remembered: the next page, without ?lang=, is English although the browser asks Korean.
  await page.goto(`${baseUrl()}/agents`);
  await expect(page).toHaveTitle('Agents — control plane');
  await page.locator('nav.lang a[hreflang="ko"]').click();
  await expect(page).toHaveTitle('에이전트 — 컨트롤 플레인');
  await page.goto(`${baseUrl()}/infra?view=2d`);
  await expect(workerCard(page, 'image-render').locator('.state')).toHaveText('🟢 대기');
});
