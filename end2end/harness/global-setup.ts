// Starts a private redis-server and the release server against it for the whole run, and
// publishes their addresses to the tests through the environment.
import { spawn, ChildProcess } from 'node:child_process';
import { mkdtempSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { redisCli } from './redis';
import { AGENT_TOKEN, OPERATOR_TOKEN } from './agent';
import { freePort, serverEnv } from './server';

const root = path.resolve(__dirname, '..', '..');

async function waitFor(what: string, ok: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (await ok().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not come up`);
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  const bin = path.join(root, 'target', 'release', 'agent-office');
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run scripts/run.sh or cargo xtask build first`);
  const redisPort = await freePort();
  const httpPort = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'ao-e2e-'));
  const children: ChildProcess[] = [];
  const stop = async () => {
    for (const child of children.reverse()) child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  // Whatever fails while starting, nothing is left running.
  try {

    children.push(
      spawn('redis-server', ['--port', `${redisPort}`, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
        stdio: 'ignore',
      }),
    );
    process.env.AO_REDIS_PORT = `${redisPort}`;
    process.env.AO_REDIS_PID = `${children[0].pid}`;
    await waitFor('redis-server', async () => redisCli('PING') === 'PONG');

    const server = (port: number, tokens: Record<string, string>) =>
      spawn(bin, [], {
        stdio: ['ignore', 'inherit', 'inherit'],
        env: serverEnv(redisPort, port, tokens),
      });
    children.push(server(httpPort, { OPERATOR_TOKEN, AGENT_TOKEN }));
    process.env.AO_BASE_URL = `http://127.0.0.1:${httpPort}`;
    await waitFor('agent-office', async () => (await fetch(`${process.env.AO_BASE_URL}/healthz`)).ok);

    // A second server on the same Redis without tokens: what a read-only deployment shows.
    const readOnlyPort = await freePort();
    children.push(server(readOnlyPort, {}));
    process.env.AO_READONLY_URL = `http://127.0.0.1:${readOnlyPort}`;
    await waitFor('read-only agent-office', async () => (await fetch(`${process.env.AO_READONLY_URL}/healthz`)).ok);

    // The same server behind Debian's nginx, as deployed (deploy/nginx.conf).
    const nginxPort = await freePort();
    children.push(
      spawn('bash', [path.join(root, 'scripts', 'nginx.sh'), `127.0.0.1:${nginxPort}`, `127.0.0.1:${httpPort}`], {
        stdio: ['ignore', 'ignore', 'inherit'],
      }),
    );
    process.env.AO_NGINX_URL = `http://127.0.0.1:${nginxPort}`;
    await waitFor('nginx', async () => (await fetch(`${process.env.AO_NGINX_URL}/healthz`)).ok);
  } catch (e) {
    await stop();
    throw e;
  }
  return stop;
}
