/** Broken model folders fail with a named, actionable error, and the same Engine then loads stories260k and generates golden text. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HubServer } from '../scripts/hub-server';
import type { Engine } from '../src/engine/engine';
import {
  EngineError,
  ModelFileMissingError,
  ModelFormatError,
  NoModelLoadedError,
  UnsupportedArchitectureError,
  UnsupportedDtypeError,
} from '../src/errors';
import { encodeSafetensors } from '../src/model/safetensors';
import type { ModelFileStream } from '../src/model/source';
import { DirSource } from './helpers/dir-source';
import { copyModel, GOLDEN, hubSpec, nodeEngine, startTestHub } from './helpers/hub';
import { randomConfigs, randomModelTensors, writeRandomModel, type RandomModelOptions } from './helpers/random-model';

const WEIGHTS = 'model.safetensors';
const F32 = { weightDtype: 'f32', kvDtype: 'f32' } as const;
/** Advice words: every message must tell the user what to do or what is supported. */
const ACTIONABLE = /re-download|download it again|check|supported|pick|use /i;

type Header = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;

/** Rewrite the JSON header of a safetensors file in place, keeping its data section. */
function rewriteHeader(file: string, mutate: (h: Header) => void): void {
  const bytes = fs.readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Header;
  mutate(header);
  const json = Buffer.from(JSON.stringify(header).padEnd(Math.ceil(JSON.stringify(header).length / 8) * 8, ' '));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, json, bytes.subarray(8 + n)]));
}

/** Edit config.json of a folder. */
function editConfig(dir: string, mutate: (c: Record<string, unknown>) => void): void {
  const file = path.join(dir, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
  mutate(cfg);
  fs.writeFileSync(file, JSON.stringify(cfg));
}

/** A local-folder source whose streams report no size, like a chunked or compressed HTTP response. */
class SizelessSource extends DirSource {
  override async stream(name: string): Promise<ModelFileStream> {
    const s = await super.stream(name);
    return { size: Number.NaN, body: s.body };
  }
}

let hub: HubServer;
let engine: Engine;
const dirs: string[] = [];
let counter = 0;

beforeAll(async () => {
  hub = await startTestHub();
  engine = nodeEngine();
});
afterAll(async () => {
  await engine.unload();
  await hub.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A damageable copy of stories260k, served as `bad/<N>`. */
function damaged(damage: (dir: string) => void): { dir: string; repo: string } {
  const dir = copyModel('stories260k');
  dirs.push(dir);
  damage(dir);
  const repo = `bad/m${counter++}`;
  hub.setRepo(repo, dir);
  return { dir, repo };
}

/** Load must reject with `type`, a message matching every pattern, and leave no model loaded. */
async function expectLoadError(load: Promise<unknown>, type: new (...a: never[]) => EngineError, ...patterns: RegExp[]) {
  const err = await load.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, 'load should have failed').toBeInstanceOf(type);
  const e = err as EngineError;
  expect(e.name).toBe(type.name);
  for (const p of patterns) expect(e.message).toMatch(p);
  expect(e.message).toMatch(ACTIONABLE);
  console.log(`${e.name}: ${e.message}`);
  expect(engine.stats().loaded).toBe(false);
  await expect(engine.generate('Once', { maxNewTokens: 1 })).rejects.toBeInstanceOf(NoModelLoadedError);
}

/** The same engine still loads the good model and greedy-generates the golden ids. */
async function expectEngineStillWorks(n = 10): Promise<void> {
  await engine.load(hubSpec(hub, 'local/stories260k'), F32);
  const g = GOLDEN.onceUponATime;
  const result = await engine.generate(g.prompt, { maxNewTokens: n });
  expect(result.tokenIds).toEqual(g.ids.slice(0, n));
}

describe('bad model input gives a named error, then the engine still works', () => {
  it('truncated model.safetensors (server reports the short length)', async () => {
    const { repo } = damaged((dir) => fs.truncateSync(path.join(dir, WEIGHTS), 600_000));
    await expectLoadError(engine.load(hubSpec(hub, repo), F32), ModelFormatError, /model\.safetensors/, /truncated/);
    await expectEngineStillWorks();
  });

  it('truncated inside the header', async () => {
    const { repo } = damaged((dir) => fs.truncateSync(path.join(dir, WEIGHTS), 1000));
    await expectLoadError(engine.load(hubSpec(hub, repo), F32), ModelFormatError, /model\.safetensors/, /truncated/);
    await expectEngineStillWorks();
  });

  it('truncated, and the stream has no known size: caught when the bytes run out', async () => {
    const { dir } = damaged((d) => fs.truncateSync(path.join(d, WEIGHTS), 600_000));
    await expectLoadError(engine.load(new SizelessSource(dir), F32), ModelFormatError, /model\.safetensors/, /truncated/);
    await expectEngineStillWorks();
  });

  it('header data_offsets point beyond the end of the file', async () => {
    const { dir, repo } = damaged((d) =>
      rewriteHeader(path.join(d, WEIGHTS), (h) => {
        const t = h['model.norm.weight'];
        const span = t.data_offsets[1] - t.data_offsets[0];
        t.data_offsets = [5_000_000, 5_000_000 + span];
      }),
    );
    await expectLoadError(engine.load(hubSpec(hub, repo), F32), ModelFormatError, /model\.safetensors/, /model\.norm\.weight/);
    await expectLoadError(engine.load(new SizelessSource(dir), F32), ModelFormatError, /model\.safetensors/);
    await expectEngineStillWorks();
  });

  it('header shape × dtype disagrees with the data_offsets span', async () => {
    const { repo } = damaged((dir) =>
      rewriteHeader(path.join(dir, WEIGHTS), (h) => {
        h['model.layers.0.self_attn.q_proj.weight'].shape = [64, 65];
      }),
    );
    await expectLoadError(
      engine.load(hubSpec(hub, repo), F32),
      ModelFormatError,
      /model\.layers\.0\.self_attn\.q_proj\.weight/,
      /lies about sizes/,
    );
    await expectEngineStillWorks();
  });

  it('two tensors claim overlapping bytes', async () => {
    const { repo } = damaged((dir) =>
      rewriteHeader(path.join(dir, WEIGHTS), (h) => {
        const a = h['model.layers.0.input_layernorm.weight'];
        const b = h['model.norm.weight'];
        b.data_offsets = [...a.data_offsets];
      }),
    );
    await expectLoadError(engine.load(hubSpec(hub, repo), F32), ModelFormatError, /overlap/, /model\.norm\.weight/);
    await expectEngineStillWorks();
  });

  it('config.json is missing (HTTP 404)', async () => {
    const { repo } = damaged((dir) => fs.rmSync(path.join(dir, 'config.json')));
    await expectLoadError(engine.load(hubSpec(hub, repo), F32), ModelFileMissingError, /config\.json/, /404/);
    await expectEngineStillWorks();
  });

  it('config.json is not JSON', async () => {
    const { repo } = damaged((dir) => fs.writeFileSync(path.join(dir, 'config.json'), '{"model_type": "llama",'));
    await expectLoadError(engine.load(hubSpec(hub, repo), F32), ModelFormatError, /config\.json/, /not valid JSON/);
    await expectEngineStillWorks();
  });

  it('model.safetensors is missing (HTTP 404)', async () => {
    const { repo } = damaged((dir) => fs.rmSync(path.join(dir, WEIGHTS)));
    await expectLoadError(engine.load(hubSpec(hub, repo), F32), ModelFileMissingError, /model\.safetensors/, /404/);
    await expectEngineStillWorks();
  });

  it('unsupported model_type "gpt2"', async () => {
    const { repo } = damaged((dir) => editConfig(dir, (c) => Object.assign(c, { model_type: 'gpt2', architectures: ['GPT2LMHeadModel'] })));
    await expectLoadError(engine.load(hubSpec(hub, repo), F32), UnsupportedArchitectureError, /gpt2/, /llama/);
    await expectEngineStillWorks();
  });

  for (const dtype of ['I8', 'F8_E4M3']) {
    it(`unsupported tensor dtype ${dtype}`, async () => {
      const name = 'model.layers.1.mlp.up_proj.weight';
      const { repo } = damaged((dir) =>
        rewriteHeader(path.join(dir, WEIGHTS), (h) => {
          const t = h[name];
          // One byte per element: same span, so only the dtype is wrong.
          t.dtype = dtype;
          t.shape = [t.data_offsets[1] - t.data_offsets[0]];
        }),
      );
      await expectLoadError(engine.load(hubSpec(hub, repo), F32), UnsupportedDtypeError, new RegExp(dtype), new RegExp(name.replace(/\./g, '\\.')));
      await expectEngineStillWorks();
    });
  }

  it('config disagrees with the weights (wrong hidden_size)', async () => {
    const { repo } = damaged((dir) => editConfig(dir, (c) => (c['hidden_size'] = 128)));
    await expectLoadError(engine.load(hubSpec(hub, repo), F32), ModelFormatError, /model\.safetensors/, /shape/, /config\.json/);
    await expectEngineStillWorks();
  });

  it('a required tensor is absent', async () => {
    const { repo } = damaged((dir) =>
      rewriteHeader(path.join(dir, WEIGHTS), (h) => {
        delete (h as Record<string, unknown>)['model.layers.4.mlp.down_proj.weight'];
      }),
    );
    await expectLoadError(engine.load(hubSpec(hub, repo), F32), ModelFormatError, /model\.layers\.4\.mlp\.down_proj\.weight/);
    await expectEngineStillWorks();
  });

  it('config without head_dim whose hidden_size is not a multiple of the head count', async () => {
    const { repo } = damaged((dir) => editConfig(dir, (c) => Object.assign(c, { num_attention_heads: 7, num_key_value_heads: 7 })));
    await expectLoadError(engine.load(hubSpec(hub, repo), F32), ModelFormatError, /hidden_size \(64\)/, /num_attention_heads \(7\)/);
    await expectEngineStillWorks();
  });

  describe('sharded index problems (random two-shard mistral)', () => {
    const INDEX = 'model.safetensors.index.json';
    const opts: RandomModelOptions = { ...randomConfigs.mistral, sharded: true };

    async function shardedRepo(damage: (dir: string) => void): Promise<string> {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvtab-bad-shards-'));
      dirs.push(dir);
      await writeRandomModel(dir, opts);
      damage(dir);
      const repo = `bad/m${counter++}`;
      hub.setRepo(repo, dir);
      return repo;
    }
    const editIndex = (dir: string, mutate: (index: Record<string, unknown>) => unknown) => {
      const file = path.join(dir, INDEX);
      const index = JSON.parse(fs.readFileSync(file, 'utf8'));
      fs.writeFileSync(file, JSON.stringify(mutate(index) ?? index));
    };

    it('the undamaged sharded model loads (control)', async () => {
      const repo = await shardedRepo(() => {});
      await engine.load(hubSpec(hub, repo), F32);
      expect(engine.stats().loaded).toBe(true);
    });

    it('index is JSON null', async () => {
      const repo = await shardedRepo((dir) => fs.writeFileSync(path.join(dir, INDEX), 'null'));
      await expectLoadError(engine.load(hubSpec(hub, repo), F32), ModelFormatError, /model\.safetensors\.index\.json/, /weight_map/);
      await expectEngineStillWorks();
    });

    it('weight_map names a path outside the repo folder', async () => {
      const repo = await shardedRepo((dir) =>
        editIndex(dir, (index) => {
          (index['weight_map'] as Record<string, string>)['model.norm.weight'] = '../stories260k/model.safetensors';
        }),
      );
      await expectLoadError(engine.load(hubSpec(hub, repo), F32), ModelFormatError, /model\.norm\.weight/, /\.\.\/stories260k/);
      await expectEngineStillWorks();
    });

    it('a shard listed in the index is missing (HTTP 404)', async () => {
      const repo = await shardedRepo((dir) => fs.rmSync(path.join(dir, 'model-00002-of-00002.safetensors')));
      await expectLoadError(engine.load(hubSpec(hub, repo), F32), ModelFileMissingError, /model-00002-of-00002\.safetensors/, /404/);
      await expectEngineStillWorks();
    });

    it('the same tensor appears in both shards', async () => {
      const repo = await shardedRepo((dir) => {
        const tensors = randomModelTensors(opts);
        const cut = Math.ceil(tensors.length / 2);
        fs.writeFileSync(path.join(dir, 'model-00002-of-00002.safetensors'), encodeSafetensors([...tensors.slice(cut), tensors[0]]));
      });
      await expectLoadError(engine.load(hubSpec(hub, repo), F32), ModelFormatError, new RegExp(randomModelTensors(opts)[0].name.replace(/\./g, '\\.')), /more than one shard/);
      await expectEngineStillWorks();
    });
  });

  it('after all failures the engine still produces the full golden text', async () => {
    await expectEngineStillWorks(GOLDEN.onceUponATime.ids.length);
  });
});
