// A pipeline agent in REST mode, driven step by step by a test: it registers, beats, polls for
// commands and reports results exactly when told, so each ledger state can be seen on the page.
import { baseUrl } from './app';

/** The tokens the global setup gives the server (test-only values). */
export const OPERATOR_TOKEN = 'e2e-operator-token-0123456789';
export const AGENT_TOKEN = 'e2e-agent-token-0123456789';

export interface PipelineStat { id: string; status: string; processed: number; errors: number }

export class RestAgent {
  private cursor = '0';

  constructor(public id: string, private labels: Record<string, string> = {}, private base: string = baseUrl()) {}

  private async call(method: string, path: string, body?: unknown): Promise<Response> {
    const r = await fetch(`${this.base}${path}`, {
      method,
      headers: { Authorization: `Bearer ${AGENT_TOKEN}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
    return r;
  }

  async register(): Promise<void> {
    await this.call('POST', '/api/agents/register', {
      agent_id: this.id, ip: '127.0.0.1', hostname: `host-${this.id}`, os: 'linux', arch: 'x86_64',
      version: '0.1.0', max_concurrent: 2, labels: this.labels,
    });
  }

  async beat(pipelines: PipelineStat[]): Promise<void> {
    const timestamp = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    await this.call('POST', `/api/agents/${this.id}/heartbeat`, {
      agent_id: this.id, timestamp, cpu_usage: 12, memory_usage: 34,
      pipelines: pipelines.map((p) => p.id), pipeline_stats: pipelines, communication_mode: 'rest',
    });
  }

  /** One poll: the commands since the last one (the server marks them delivered). */
  async poll(): Promise<any[]> {
    const reply = await (await this.call('GET', `/api/agents/${this.id}/commands?after=${this.cursor}`)).json();
    this.cursor = reply.cursor;
    return reply.commands;
  }

  async report(commandId: string, status: 'succeeded' | 'failed', message: string): Promise<void> {
    await this.call('POST', `/api/commands/${commandId}/results`, { agent_id: this.id, status, message });
  }
}

/** Waits until the server lists the agent as online (the collector has read its beat). */
export async function agentOnline(id: string, base: string = baseUrl()): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const agents = (await (await fetch(`${base}/api/agents`)).json()).agents;
    if (agents.some((a: any) => a.agent_id === id && a.online)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`agent ${id} never came online`);
}
