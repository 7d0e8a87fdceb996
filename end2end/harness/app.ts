// Locators and actions for the /infra page.
import { Page, Locator, expect } from '@playwright/test';

/** The registry of SPEC §3: always shown, alive or not. */
export const FLEET = ['music-render', 'video-render', 'image-render', 'insta-render', 'task-watcher', 'ai_trade'];

/** Every registered worker has its card (discovered workers may come on top). */
export async function expectFleetCards(page: Page): Promise<void> {
  for (const name of FLEET) await expect(workerCard(page, name)).toHaveCount(1);
}

export function baseUrl(): string {
  const url = process.env.AO_BASE_URL;
  if (!url) throw new Error('AO_BASE_URL is not set: the global setup did not run');
  return url;
}

export function nginxUrl(): string {
  const url = process.env.AO_NGINX_URL;
  if (!url) throw new Error('AO_NGINX_URL is not set: the global setup did not run');
  return url;
}

/** Opens /infra, forcing a view with `?view=` when one is given. */
export async function openInfra(page: Page, view?: '2d' | '3d', base: string = baseUrl()): Promise<void> {
  await page.goto(view ? `${base}/infra?view=${view}` : `${base}/infra`);
}

export function workerCard(page: Page, name: string): Locator {
  return page.locator(`article.card[data-worker="${name}"]`);
}

/** Waits until the collector has seen what the test just wrote. */
export async function collectorSees(check: (nodes: any) => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const nodes = await (await fetch(`${baseUrl()}/api/agent-office/nodes`)).json();
    if (check(nodes)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the collector never saw the scenario');
}
