import { test, expect, Page } from '@playwright/test';
import { reset, redisCli, beat } from '../harness/redis';
import { collectorSees, workerCard } from '../harness/app';
import { RestAgent, agentOnline, OPERATOR_TOKEN } from '../harness/agent';

const RUNNING = [{ id: 'image', status: 'running', processed: 7, errors: 1 }];

function readOnlyUrl(): string {
  const url = process.env.AO_READONLY_URL;
  if (!url) throw new Error('AO_READONLY_URL is not set: the global setup did not run');
  return url;
}

async function withToken(page: Page, token: string): Promise<void> {
  await page.addInitScript((t) => sessionStorage.setItem('agent-office.operator-token', t), token);
}

test.beforeEach(async () => {
  await reset();
});

test('the agents page is server-rendered and read-only without JavaScript', async ({ page }, info) => {
  const agent = new RestAgent('render-host-1', { env: 'prod' });
  await agent.register();
  await agent.beat(RUNNING);
  await agentOnline('render-host-1');
  await page.goto(`${process.env.AO_BASE_URL}/agents`);
  await expect(page).toHaveTitle('Agents — control plane');
  const row = page.locator('table.agents tr[data-agent="render-host-1"]');
  await expect(row).toHaveAttribute('data-online', 'true');
  await expect(row.locator('.mode')).toHaveText('rest');
  await expect(row.locator('.label')).toHaveText('env=prod');
  await expect(row.locator('[data-pipeline="image"] .counts')).toHaveText('7 done, 1 errors');
  if (info.project.name === 'js-off') {
    await expect(row.locator('button[data-action="pause"]')).toBeHidden();
    await expect(page.locator('.command-form')).toBeHidden();
  } else {
    await expect(row.locator('button[data-action="pause"]')).toBeVisible();
  }
});

test('pause a pipeline from the page: token prompt, then queued → delivered → succeeded', async ({ page }, info) => {
  test.skip(info.project.name === 'js-off', 'commands need JavaScript');
  const agent = new RestAgent('render-host-1');
  await agent.register();
  await agent.beat(RUNNING);
  await agentOnline('render-host-1');
  await page.goto(`${process.env.AO_BASE_URL}/agents`);
  await page.locator('tr[data-agent="render-host-1"] [data-pipeline="image"] button[data-action="pause"]').click();
  const prompt = page.locator('form.token-form');
  await expect(prompt).toBeVisible();
  await prompt.locator('input[name="operator-token"]').fill(OPERATOR_TOKEN);
  await prompt.locator('button[type="submit"]').click();
  await expect(prompt).toBeHidden();
  await expect(page.locator('.flash.ok')).toContainText('pause_pipeline image on render-host-1');

  const target = page.locator('table.ledger li.target[data-agent="render-host-1"]').first();
  await expect(target).toHaveAttribute('data-state', 'queued');
  const commands = await agent.poll();
  expect(commands.map((c) => c.type)).toEqual(['pause_pipeline']);
  await expect(target).toHaveAttribute('data-state', 'delivered');
  await expect(target).toContainText('via poll');
  await agent.report(commands[0].command_id, 'succeeded', 'paused');
  await expect(target).toHaveAttribute('data-state', 'succeeded');
  await expect(target).toContainText('paused');
  await expect(page.locator('table.audit')).toContainText('command.send');

  // The token is kept for the session: the next command goes without asking.
  await page.reload();
  await page.locator('tr[data-agent="render-host-1"] [data-pipeline="image"] button[data-action="stop"]').click();
  await expect(page.locator('.flash.ok')).toContainText('stop_pipeline image on render-host-1');
  await expect(prompt).toBeHidden();
});

test('a wrong token is refused and asked for again', async ({ page }, info) => {
  test.skip(info.project.name === 'js-off', 'commands need JavaScript');
  const agent = new RestAgent('render-host-1');
  await agent.register();
  await agent.beat(RUNNING);
  await agentOnline('render-host-1');
  await withToken(page, 'not-the-token-at-all');
  await page.goto(`${process.env.AO_BASE_URL}/agents`);
  await page.locator('tr[data-agent="render-host-1"] [data-pipeline="image"] button[data-action="pause"]').click();
  await expect(page.locator('form.token-form')).toBeVisible();
  expect((await (await fetch(`${process.env.AO_BASE_URL}/api/commands`)).json()).commands).toEqual([]);
});

test('the command form previews who a selector reaches and why others are left out', async ({ page }, info) => {
  test.skip(info.project.name === 'js-off', 'commands need JavaScript');
  await new RestAgent('prod-1', { env: 'prod', memory: '64' }).register();
  await new RestAgent('dev-1', { env: 'dev', memory: '64' }).register();
  await new RestAgent('odd-1', { env: 'prod', memory: 'lots' }).register();
  await withToken(page, OPERATOR_TOKEN);
  await page.goto(`${process.env.AO_BASE_URL}/agents`);
  await expect(page.locator('table.agents tr[data-agent]')).toHaveCount(3);
  const form = page.locator('.command-form');
  await form.locator('select[name="type"]').selectOption('shutdown');
  await form.locator('input[value="selector"]').check();
  await form
    .locator('textarea[name="selector"]')
    .fill('{"matchLabels": {"env": "prod"}, "matchExpressions": [{"key": "memory", "operator": "Gt", "values": ["16"]}]}');
  await form.locator('button.preview-button').click();
  await expect(form.locator('.preview .matched')).toHaveText('Reaches: prod-1');
  await expect(form.locator('.excluded li[data-agent="dev-1"]')).toContainText('`env` is `dev`, not `prod`');
  await expect(form.locator('.excluded li[data-agent="odd-1"]')).toContainText('`memory` is not an integer');
  await form.locator('button.send-button').click();
  await expect(page.locator('.flash.ok')).toContainText('to prod-1');
  await expect(page.locator('table.ledger tr[data-command]')).toHaveCount(1);
  await expect(page.locator('table.ledger li.target')).toHaveCount(1);
});

test('retry dead letters from a worker card', async ({ page }, info) => {
  test.skip(info.project.name === 'js-off', 'queue actions need JavaScript');
  beat('insta-render', 'render', 'idle', 1);
  redisCli('RPUSH', 'dead_letter:queue:insta-render', 'x', 'y');
  await collectorSees((n) => n.workers.some((w: any) => w.name === 'insta-render' && w.dead_letter === 2));
  await withToken(page, OPERATOR_TOKEN);
  await page.goto(`${process.env.AO_BASE_URL}/infra?view=2d`);
  const card = workerCard(page, 'insta-render');
  await card.locator('button[data-action="retry"]').click();
  await expect(page.locator('.flash.ok')).toContainText('"moved":2');
  await expect(card.locator('.dead')).toHaveText('0');
  await expect(card.locator('.queue')).toHaveText('2');
  expect(redisCli('LRANGE', 'queue:insta-render', '0', '-1').split('\n')).toEqual(['x', 'y']);
});

test('without an operator token the page says read-only and the API refuses', async ({ page }, info) => {
  const agent = new RestAgent('render-host-1', {}, process.env.AO_BASE_URL);
  await agent.register();
  await agent.beat(RUNNING);
  await agentOnline('render-host-1', readOnlyUrl());
  await page.goto(`${readOnlyUrl()}/agents`);
  await expect(page.locator('.banner.read-only')).toContainText('no OPERATOR_TOKEN configured');
  const r = await fetch(`${readOnlyUrl()}/api/commands`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${OPERATOR_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ type: 'shutdown', agent_id: 'render-host-1' }),
  });
  expect(r.status).toBe(403);
  expect((await r.json()).error).toContain('read-only');
  if (info.project.name === 'js-on') {
    await withToken(page, OPERATOR_TOKEN);
    await page.reload();
    await page.locator('tr[data-agent="render-host-1"] [data-pipeline="image"] button[data-action="pause"]').click();
    await expect(page.locator('.flash.err')).toContainText('read-only');
  }
});
