// How the tests run the release server: the environment scripts/lib.sh gives it.
import { createServer } from 'node:net';
import path from 'node:path';

export const root = path.resolve(__dirname, '..', '..');
export const serverBin = path.join(root, 'target', 'release', 'agent-office');

/** The server's environment for a Redis port and a listen port (fast cadences for tests). */
export function serverEnv(redisPort: number, httpPort: number, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...extra,
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    COLLECT_INTERVAL: '250ms',
    DISCOVER_INTERVAL: '500ms',
    RUST_LOG: 'warn',
    LEPTOS_OUTPUT_NAME: 'agent-office',
    LEPTOS_SITE_ROOT: path.join(root, 'target', 'site'),
    LEPTOS_SITE_PKG_DIR: 'pkg',
    LEPTOS_ENV: 'PROD',
    LEPTOS_HASH_FILES: 'true',
    LEPTOS_SITE_ADDR: `127.0.0.1:${httpPort}`,
  };
}

/** A TCP port nobody listens on. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}
