/**
 * `npm start`: the local model hub (../shared/models as `local/<name>`) plus the Vite dev server,
 * in one process; Ctrl-C stops both.
 * The printed app URL carries the hub as `?hub=<base>&model=local/stories260k`; the hub's base URL is
 * also exposed to the app as `import.meta.env.VITE_HUB_URL`.
 * Env: PORT (app, default 5173), HUB_PORT (hub, default 8787), KVTAB_MODELS_DIR (models folder).
 */
import { createServer } from 'vite';
import { defaultRepos, sharedModelsDir, startHubServer } from './hub-server';

const hub = await startHubServer({ repos: defaultRepos(), port: Number(process.env.HUB_PORT ?? 8787) });
process.env.VITE_HUB_URL = hub.baseUrl;

const vite = await createServer(); // vite.config.ts: host 127.0.0.1, port $PORT or 5173
await vite.listen();
const appUrl = vite.resolvedUrls?.local[0] ?? `http://127.0.0.1:${vite.config.server.port}/`;

const query = `?hub=${encodeURIComponent(hub.baseUrl)}&model=local/stories260k`;
console.log(`\n  kvtab app:  ${appUrl}${query}`);
console.log(`  local hub:  ${hub.baseUrl}  (${sharedModelsDir()} as local/<name>)`);
console.log('  Ctrl-C to stop.\n');

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return process.exit(1); // second Ctrl-C: exit now
  stopping = true;
  await Promise.allSettled([vite.close(), hub.close()]);
  process.exit(0);
}
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
