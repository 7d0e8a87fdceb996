// Writes scenarios into the test Redis with redis-cli, the way a worker would.
import { execFileSync } from 'node:child_process';

export function redisCli(...args: string[]): string {
  const port = process.env.AO_REDIS_PORT;
  if (!port) throw new Error('AO_REDIS_PORT is not set: the global setup did not run');
  return execFileSync('redis-cli', ['-p', port, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** A Contract-1 heartbeat written `ageS` seconds ago, stored with the contract's 45 s TTL. */
export function beat(name: string, kind: string, state: string, ageS = 0, extra: Record<string, unknown> = {}): void {
  const ts = new Date(Date.now() - ageS * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const value = JSON.stringify({ name, kind, state, ts, last_job_at: null, jobs_done: 5, jobs_failed: 0, ...extra });
  redisCli('SET', `worker:${name}:heartbeat`, value, 'EX', '45');
}

/**
 * Empties the test Redis, then waits until the collector has begun a cycle after that: from
 * then on every snapshot (and every `collectorSees`) is of what the test writes next, never of
 * what the test before it left.
 */
export async function reset(): Promise<void> {
  const before = await collectorCycles();
  redisCli('FLUSHALL');
  const deadline = Date.now() + 10_000;
  while ((await collectorCycles()) < before + 2) {
    if (Date.now() > deadline) throw new Error('the collector ran no cycle after FLUSHALL');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** How many cycles the collector of the main server has finished (its /metrics). */
async function collectorCycles(): Promise<number> {
  const text = await (await fetch(`${process.env.AO_BASE_URL}/metrics`)).text();
  const m = text.match(/^agent_office_collector_cycle_seconds_count (\d+)/m);
  return m ? Number(m[1]) : 0;
}

/** Freezes the test Redis (SIGSTOP): unreachable for the server, its data kept. */
export function freezeRedis(): void {
  process.kill(Number(process.env.AO_REDIS_PID), 'SIGSTOP');
}

export function thawRedis(): void {
  process.kill(Number(process.env.AO_REDIS_PID), 'SIGCONT');
}
