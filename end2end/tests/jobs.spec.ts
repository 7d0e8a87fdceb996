import { test, expect, Page } from '@playwright/test';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { reset, redisCli } from '../harness/redis';
import { baseUrl } from '../harness/app';
import { agentOnline, OPERATOR_TOKEN } from '../harness/agent';
import { PipelineAgent } from '../harness/pipeline-agent';

// While this file exists the handler fails with a word a person would search for.
const BROKEN = path.join(tmpdir(), `ao-e2e-broken-${process.pid}`);
const YAML = `agent: { shutdown_grace: 2s }
pipelines:
  - id: image
    queue: image-render
    max_retries: 1
    handler: ["sh", "-c", "read job; case $job in big) head -c 1048576 /dev/zero | tr '\\\\0' y; echo; echo BIG-END; exit 0;; slow*) for i in 1 2 3 4 5 6; do echo tick $i; sleep 1; done; exit 0;; esac; echo \\"rendering $job\\"; if [ -e ${BROKEN} ]; then echo 'disk on fire' >&2; exit 3; fi"]
`;

/** Waits until the API says job `id` has `status`. */
async function jobIs(id: string, status: string): Promise<any> {
  const deadline = Date.now() + 20_000;
  let last: any = null;
  while (Date.now() < deadline) {
    const r = await fetch(`${baseUrl()}/api/jobs/${id}`);
    if (r.ok) {
      last = await r.json();
      if (last.status === status) return last;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`job ${id} never became ${status}: ${JSON.stringify(last)}`);
}

/** Waits until the server's job index lists `id` (the list and search read the index). */
async function listed(id: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const jobs = (await (await fetch(`${baseUrl()}/api/jobs?q=${id}`)).json()).jobs;
    if (jobs.some((j: any) => j.id === id && j.status !== 'running')) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`job ${id} never reached the index`);
}

function jobRow(page: Page, section: string, id: string) {
  return page.locator(`${section} tr[data-job="${id}"]`);
}

let agent: PipelineAgent | null = null;

test.beforeEach(async () => {
  await reset();
  agent = new PipelineAgent('jobs-agent', YAML);
});

test.afterEach(async () => {
  await agent?.stop();
  agent = null;
  rmSync(BROKEN, { force: true });
});

test('a dead letter: found on /jobs by a word of its stderr, its page says why, every attempt shown', async ({ page }, info) => {
  writeFileSync(BROKEN, '');
  redisCli('LPUSH', 'queue:image-render', JSON.stringify({ id: 'e2e-job-1', payload: 'frame 1' }), 'big');
  await jobIs('e2e-job-1', 'dead');
  await listed('e2e-job-1');

  await page.goto(`${baseUrl()}/jobs`);
  await expect(page).toHaveTitle(/Jobs/);
  // problems first
  await expect(jobRow(page, '.jobs-problems', 'e2e-job-1')).toHaveAttribute('data-status', 'dead');
  // the search box is a plain form: it works with JavaScript on and off
  await page.locator('.job-filters input[name="q"]').fill('DISK ON FIRE');
  await page.locator('.job-filters button[type="submit"]').click();
  await expect(page).toHaveURL(/q=DISK/);
  await expect(jobRow(page, '.jobs-list', 'e2e-job-1')).toHaveCount(1);
  await expect(page.locator('.jobs-list tr[data-job]')).toHaveCount(1);

  await jobRow(page, '.jobs-list', 'e2e-job-1').locator('a.job-id').click();
  await expect(page).toHaveURL(/\/jobs\/e2e-job-1/);
  await expect(page.locator('.job-why .job-reason')).toContainText('exit status 3: disk on fire');
  await expect(page.locator('.job-payload pre')).toHaveText('frame 1');
  const attempts = page.locator('section.attempt');
  await expect(attempts).toHaveCount(2);
  await expect(attempts.first().locator('.tail.stderr pre')).toHaveText('disk on fire');
  await expect(attempts.first().locator('.tail.stdout pre')).toHaveText('rendering frame 1');
  if (info.project.name === 'js-on') {
    // retry it from its page once the disk is cooled: it succeeds, the earlier attempts stay
    rmSync(BROKEN, { force: true });
    await page.evaluate((t) => sessionStorage.setItem('agent-office.operator-token', t), OPERATOR_TOKEN);
    await page.locator('button[data-action="retry-job"]').click();
    await expect(page.locator('.flash.ok')).toContainText('e2e-job-1');
    await expect(page.locator('article.job')).toHaveAttribute('data-status', 'succeeded', { timeout: 15_000 });
    await expect(page.locator('section.attempt')).toHaveCount(3);
    expect(redisCli('LLEN', 'dead_letter:queue:image-render')).toBe('0');
  } else {
    // without JavaScript the actions stay hidden: the page is read-only
    await expect(page.locator('button[data-action="retry-job"]')).toBeHidden();
  }

  // a 1 MB output is kept as its last 16 KiB
  const big = (await (await fetch(`${baseUrl()}/api/jobs?q=big-end`)).json()).jobs[0];
  await page.goto(`${baseUrl()}/jobs/${big.id}`);
  const out = page.locator('section.attempt .tail.stdout pre');
  await expect(out).toContainText('BIG-END');
  const text = await out.textContent();
  expect(text!.length).toBeLessThanOrEqual(16 * 1024);
  expect(text!.length).toBeGreaterThan(16 * 1024 - 64);
});

test('a running job: its output appears on its page line by line as it is written', async ({ page }, info) => {
  test.skip(info.project.name !== 'js-on', 'following live needs JavaScript');
  redisCli('LPUSH', 'queue:image-render', JSON.stringify({ id: 'e2e-slow', payload: 'slow' }));
  await jobIs('e2e-slow', 'running');
  await page.goto(`${baseUrl()}/jobs/e2e-slow`);
  const live = page.locator('pre.live-log');
  await expect(live).toContainText('tick 1');
  // seen while the job still runs, before its last line was written
  expect(await live.textContent()).not.toContain('tick 6');
  await expect(live).toContainText('tick 3');
  await expect(page.locator('article.job')).toHaveAttribute('data-status', 'succeeded', { timeout: 15_000 });
  await expect(page.locator('section.attempt .tail.stdout pre')).toContainText('tick 6');
});

test('a worker card and an agent pipeline row lead to that queue’s jobs', async ({ page }) => {
  redisCli('LPUSH', 'queue:image-render', JSON.stringify({ id: 'e2e-link', payload: 'frame 2' }));
  await jobIs('e2e-link', 'succeeded');
  await listed('e2e-link');
  await page.goto(`${baseUrl()}/infra?view=2d`);
  const link = page.locator('article.card[data-worker="image-render"] a.jobs-link');
  await expect(link).toHaveAttribute('href', /\/jobs\?queue=image-render/);
  await link.click();
  await expect(page).toHaveURL(/\/jobs\?queue=image-render/);
  await expect(page.locator('.jobs-list tr[data-job="e2e-link"]')).toHaveCount(1);
  await agentOnline('jobs-agent');
  await page.goto(`${baseUrl()}/agents`);
  await expect(page.locator('tr[data-agent="jobs-agent"] [data-pipeline="image"] a.jobs-link')).toHaveAttribute(
    'href',
    '/jobs?queue=image-render',
  );
  expect(existsSync(BROKEN)).toBe(false);
});
