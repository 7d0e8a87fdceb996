// A real `pipeline-agent` (target/release/pipeline-agent) against the test Redis and server,
// configured the way the README deploys it: a YAML file in CONFIG_DIR plus the environment.
import { spawn, ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { baseUrl } from './app';
import { AGENT_TOKEN } from './agent';

const bin = path.resolve(__dirname, '..', '..', 'target', 'release', 'pipeline-agent');

export class PipelineAgent {
  private child: ChildProcess;
  private dir: string;

  constructor(public id: string, yaml: string) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: scripts/test.sh builds it (build_release)`);
    this.dir = mkdtempSync(path.join(tmpdir(), 'ao-e2e-agent-'));
    writeFileSync(path.join(this.dir, 'agent.yaml'), `api: { listen: "127.0.0.1:0" }\n${yaml}`);
    this.child = spawn(bin, [], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        CONFIG_DIR: this.dir,
        AGENT_ID: id,
        REDIS_HOST: '127.0.0.1',
        REDIS_PORT: process.env.AO_REDIS_PORT ?? '',
        CONTROL_PLANE_URL: baseUrl(),
        AGENT_TOKEN,
        HEARTBEAT_INTERVAL: '1s',
        RUST_LOG: 'warn',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
