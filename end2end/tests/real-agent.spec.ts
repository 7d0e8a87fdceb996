import { test, expect, Page } from '@playwright/test';
import { reset, redisCli } from '../harness/redis';
import { openInfra, workerCard } from '../harness/app';
import { agentOnline, OPERATOR_TOKEN } from '../harness/agent';
import { PipelineAgent } from '../harness/pipeline-agent';

// image-render run by a real pipeline-agent: its handler takes 0.3 s a job.
const YAML = `agent: { shutdown_grace: 2s }
pipelines:
  - { id: image, queue: image-render, handler: ["sleep", "0.3"], kind: render, heartbeat_name: image-render }
`;

async function press(page: Page, action: 'pause' | 'resume'): Promise<void> {
  await page.goto(`${process.env.AO_BASE_URL}/agents`);
  const pipeline = page.locator('tr[data-agent="real-agent"] [data-pipeline="image"]');
  await pipeline.locator(`button[data-action="${action}"]`).click();
  await expect(page.locator('.flash.ok')).toContainText(`${action}_pipeline image on real-agent`);
  const target = page.locator('table.ledger li.target[data-agent="real-agent"]').first();
  await expect(target).toHaveAttribute('data-state', 'succeeded');
  await expect(target).toContainText('via pub/sub');
}

test.beforeEach(async () => {
  await reset();
});

test('pause a real agent from the Agents view: its card pauses and its queue grows, resume drains it', async ({ page }, info) => {
  test.skip(info.project.name !== 'js-on', 'commands need JavaScript; one browser is enough');
  const agent = new PipelineAgent('real-agent', YAML);
  try {
    await agentOnline('real-agent');
    await page.addInitScript((t) => sessionStorage.setItem('agent-office.operator-token', t), OPERATOR_TOKEN);

    await press(page, 'pause');
    redisCli('LPUSH', 'queue:image-render', 'j1', 'j2', 'j3', 'j4');
    await openInfra(page, '2d');
    const card = workerCard(page, 'image-render');
    await expect(card.locator('.state')).toHaveText(/paused/);
    await expect(card.locator('.queue')).toHaveText('4');
    await page.waitForTimeout(1500);
    await expect(card.locator('.queue')).toHaveText('4');

    await press(page, 'resume');
    await openInfra(page, '2d');
    await expect(workerCard(page, 'image-render').locator('.queue')).toHaveText('0', { timeout: 15_000 });
    await expect(workerCard(page, 'image-render').locator('.jobs')).toContainText('4');
  } finally {
    await agent.stop();
  }
});
