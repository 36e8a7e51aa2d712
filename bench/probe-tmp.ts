import { create, globals } from 'webgpu';
import { defaultRepos, startHubServer } from '../scripts/hub-server';
import { Engine } from '../src/engine/engine';
import type { KvModeSpec } from '../src/worker/api';

async function main() {
  Object.assign(globalThis, globals);
  const hub = await startHubServer({ repos: defaultRepos('/work/shared/models') });
  for (const chunk of [64, 256]) {
    const engine = new Engine(create([]) as unknown as GPU);
    await engine.load({ kind: 'hub', repo: 'local/byte-llama-12l', baseUrl: hub.baseUrl }, { kvMode: { mode: 'full' }, allLogits: true, prefillChunk: chunk, weightDtype: 'f32', kvDtype: 'f32' });
    const m = engine.model!;
    for (const spec of [{ mode: 'full' }, { mode: 'kivi', bits: 2 }] as KvModeSpec[]) {
      await engine.setKvMode(spec);
      for (const n of [512, 1024]) {
        m.kv.reset();
        const ids = Array.from({ length: n }, (_, i) => 97 + (i % 26));
        let t = performance.now();
        for (let p = 0; p < n; p += chunk) await m.forward(ids.slice(p, p + chunk), p + chunk >= n ? 'token' : 'none');
        const pre = performance.now() - t;
        t = performance.now();
        for (let i = 0; i < 8; i++) await m.forward([100], 'token');
        console.log(chunk, spec.mode, n, 'prefill ms', pre.toFixed(0), 'decode ms/tok', ((performance.now() - t) / 8).toFixed(1));
      }
    }
    await engine.unload();
  }
  await hub.close(); process.exit(0);
}
main().catch((e) => { console.error(e); process.exit(1); });
