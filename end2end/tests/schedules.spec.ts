import { test, expect } from '@playwright/test';
import { reset, redisCli } from '../harness/redis';
import { baseUrl } from '../harness/app';
import { OPERATOR_TOKEN } from '../harness/agent';

test.beforeEach(async () => {
  await reset();
});

test('a schedule made on the page previews its runs, fires at the due seconds, and is deleted', async ({ page }, info) => {
  test.skip(info.project.name !== 'js-on', 'the form needs JavaScript');
  await page.goto(`${baseUrl()}/schedules`);
  await expect(page.locator('.no-schedules')).toBeVisible();
  await page.evaluate((t) => sessionStorage.setItem('agent-office.operator-token', t), OPERATOR_TOKEN);
  const form = page.locator('.schedule-form');
  await form.locator('input[name="name"]').fill('e2e-tick');
  await form.locator('input[name="cron"]').fill('* * * * * *');
  await form.locator('input[name="queue"]').fill('e2e-sched');
  await form.locator('textarea[name="job"]').fill('tick');
  // a bad time zone is named before anything is saved
  await form.locator('input[name="timezone"]').fill('Mars/Base');
  await form.locator('button[data-action="preview"]').click();
  await expect(form.locator('.flash.err')).toContainText('timezone');
  await form.locator('input[name="timezone"]').fill('Asia/Seoul');
  await form.locator('button[data-action="preview"]').click();
  await expect(form.locator('.next-runs-preview')).toContainText('Z ·');
  await form.locator('button[data-action="save"]').click();
  await expect(page.locator('.flash.ok')).toContainText('e2e-tick');
  const row = page.locator('tr[data-schedule="e2e-tick"]');
  await expect(row.locator('ul.next-runs li')).toHaveCount(3);
  // it fires every second; each push is one job with the due time in its id
  await expect.poll(() => Number(redisCli('LLEN', 'queue:e2e-sched')), { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
  const items = redisCli('LRANGE', 'queue:e2e-sched', '0', '-1').split('\n').map((l) => JSON.parse(l));
  expect(new Set(items.map((i) => i.id)).size).toBe(items.length);
  expect(items[0].id).toMatch(/^sched:e2e-tick:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  expect(items[0].payload).toBe('tick');
  await page.reload();
  await expect(row.locator('a.job-id')).toHaveText(/^sched:e2e-tick:/);
  // pause, then delete
  await row.locator('button[data-action="toggle"]').click();
  await expect(row).toHaveAttribute('data-enabled', 'false');
  await row.locator('button[data-action="delete"]').click();
  await expect(row).toHaveCount(0);
});

test('the schedules page reads without JavaScript: next three runs and the last job', async ({ page }) => {
  const r = await fetch(`${baseUrl()}/api/schedules`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${OPERATOR_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'e2e-nightly', cron: '30 2 * * *', timezone: 'Asia/Seoul', queue: 'e2e-sched', job: { payload: 'sweep' } }),
  });
  expect(r.status).toBe(201);
  await page.goto(`${baseUrl()}/schedules`);
  const row = page.locator('tr[data-schedule="e2e-nightly"]');
  await expect(row).toContainText('30 2 * * *');
  await expect(row).toContainText('Asia/Seoul');
  await expect(row.locator('ul.next-runs li')).toHaveCount(3);
  await expect(row.locator('ul.next-runs li').first()).toHaveText(/T17:30:00Z$/);
});
