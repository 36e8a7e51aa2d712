import { create, globals } from 'webgpu';
import { defaultRepos, startHubServer } from '../scripts/hub-server';
import { Engine } from '../src/engine/engine';
import { draculaBody, firstTokens } from './eval/text';
import { perplexity } from './eval/measure';

async function main() {
  Object.assign(globalThis, globals);
  const hub = await startHubServer({ repos: defaultRepos() });
  const engine = new Engine(create([]) as unknown as GPU);
  let t = performance.now();
  await engine.load({ kind: 'hub', repo: 'local/byte-llama-12l', baseUrl: hub.baseUrl }, { kvMode: { mode: 'full' }, allLogits: true, prefillChunk: 64, weightDtype: 'f32', kvDtype: 'f32' });
  console.log('load', performance.now() - t);
  const body = draculaBody('/work/shared/eval/dracula.txt');
  const ids = firstTokens(engine.tokenizer!, body, 1024);
  console.log(ids.slice(0, 20));
  for (const n of [512, 513, 1024]) {
    t = performance.now();
    const r = await perplexity(engine, ids.slice(0, n), 4);
    console.log(n, r.ppl, r.kvBytes, r.fp16Bytes, performance.now() - t);
  }
  for (const spec of [{ mode: 'kivi' as const, bits: 2 as const }]) {
    await engine.setKvMode(spec);
    t = performance.now();
    const r = await perplexity(engine, ids.slice(0, 512), 4);
    console.log(spec, r.ppl, r.kvBytes, r.fp16Bytes, r.components, performance.now() - t);
  }
  await engine.unload(); await hub.close(); process.exit(0);
}
main().catch((e) => { console.error(e); process.exit(1); });
