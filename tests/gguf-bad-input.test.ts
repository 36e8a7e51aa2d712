/**
 * Damaged GGUF files through the whole engine (hub server, streaming loader, worker-side code): each gives a
 * named, actionable error, nothing stays loaded, and the same Engine then loads the good file and generates the
 * golden text. Patches are made on the shared stories260k v3 file.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHubServer, type HubServer } from '../scripts/hub-server';
import type { Engine } from '../src/engine/engine';
import { ModelFormatError, UnsupportedDtypeError } from '../src/errors';
import { GOLDEN, nodeEngine, sharedModel } from './helpers/hub';

const GOOD = fs.readFileSync(path.join(sharedModel('stories260k'), 'stories260k-f32-v3.gguf'));
const F32 = { weightDtype: 'f32', kvDtype: 'f32' } as const;
const ACTIONABLE = /re-download|download it again|pick another|Pick a/i;

const find = (b: Uint8Array, text: string) => Buffer.from(b).indexOf(Buffer.from(text));
const setU64 = (b: Uint8Array, at: number, v: bigint) => new DataView(b.buffer, b.byteOffset).setBigUint64(at, v, true);
const setU32 = (b: Uint8Array, at: number, v: number) => new DataView(b.buffer, b.byteOffset).setUint32(at, v, true);
/** Byte offsets of the info fields of a 2-D tensor named `name`: its type (u32) and data offset (u64). */
function tensorInfo(b: Uint8Array, name: string): { type: number; offset: number } {
  const at = find(b, `${name}\u0002`.slice(0, -1)) + name.length; // after the name: u32 n_dims, 2 × u64 dims
  return { type: at + 4 + 16, offset: at + 4 + 16 + 4 };
}

const CASES: Array<{ name: string; damage: (b: Uint8Array) => Uint8Array; error: typeof ModelFormatError; message: RegExp }> = [
  { name: 'truncated in the data section', damage: (b) => b.slice(0, Math.floor(b.length * 0.6)), error: ModelFormatError, message: /truncated|ends at byte/ },
  { name: 'truncated in the header', damage: (b) => b.slice(0, 300), error: ModelFormatError, message: /truncated|has only/ },
  { name: 'wrong magic', damage: (b) => (b.set([0x47, 0x47, 0x4d, 0x4c], 0), b), error: ModelFormatError, message: /not the GGUF magic/ },
  { name: 'a tensor data offset past the end', damage: (b) => (setU64(b, tensorInfo(b, 'output.weight').offset, 1n << 32n), b), error: ModelFormatError, message: /output\.weight.* ends at byte \d+, but the file has only/ },
  { name: 'an unknown tensor type', damage: (b) => (setU32(b, tensorInfo(b, 'output.weight').type, 99), b), error: UnsupportedDtypeError, message: /type id 99/ },
  { name: 'a metadata string longer than the file', damage: (b) => (setU64(b, find(b, 'general.architecture') + 'general.architecture'.length + 4, 10n ** 8n), b), error: ModelFormatError, message: /claims 100000000 bytes/ },
  { name: 'a tensor count of 2^40', damage: (b) => (setU64(b, 8, 2n ** 40n), b), error: ModelFormatError, message: /tensor count is 1099511627776/ },
];

describe('damaged GGUF files through the engine', () => {
  let hub: HubServer;
  let dir: string;
  let engine: Engine;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvtab-bad-gguf-'));
    fs.writeFileSync(path.join(dir, 'good.gguf'), GOOD);
    CASES.forEach((c, i) => fs.writeFileSync(path.join(dir, `bad-${i}.gguf`), c.damage(new Uint8Array(GOOD))));
    hub = await startHubServer({ repos: { 'local/gguf': dir } });
    engine = nodeEngine();
  });
  afterAll(async () => {
    await engine?.unload();
    await hub?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const load = (file: string) => engine.load({ kind: 'hub', repo: 'local/gguf', baseUrl: hub.baseUrl, file }, F32);

  CASES.forEach((c, i) => {
    it(`${c.name}: a named error, then the good file gives the golden text`, async () => {
      const err = await load(`bad-${i}.gguf`).then(() => null, (e: Error) => e);
      expect(err, c.name).toBeInstanceOf(c.error);
      expect(err!.message).toMatch(c.message);
      expect(err!.message).toMatch(ACTIONABLE);
      expect(engine.stats().loaded).toBe(false);
      await load('good.gguf');
      const g = GOLDEN.onceUponATime;
      expect((await engine.generate(g.prompt, { maxNewTokens: 12 })).tokenIds).toEqual(g.ids.slice(0, 12));
    });
  });
});
