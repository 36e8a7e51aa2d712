/**
 * llama.cpp itself (node-llama-cpp 3.21.1, CPU, tools/llama-oracle) against our engine on Node + Dawn, on GGUF
 * files we write (scripts/gguf-models.ts) of the real stories260k and byte-llama-12l weights: greedy ids and
 * teacher-forced top-1 under the bars of bench/gguf/agreement.ts. llama.cpp loading the files is part of the
 * check (they are valid GGUF). The engine runs with llama.cpp numerics (the GGUF default: each product's input
 * rounded as llama.cpp's CPU back end rounds it). The files of `bar` must meet the bar (F32 and Q8_0:
 * llama.cpp's greedy ids exactly; 4–6-bit: top-1 ≥ 99%, greedy ≥ 90%); every file may disagree with llama.cpp
 * only at near-ties. The full table, with Chromium, is `npm run bench:gguf`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedModelsDir, startHubServer, type HubServer } from '../scripts/hub-server';
import { ensureGguf, ggufFileName, type GgufKind } from '../scripts/gguf-models';
import { draculaBody, firstTokens } from '../bench/eval/text';
import { exactKind, greedyTokens, score, TOP1_TOKENS, topOneIds } from '../bench/gguf/agreement';
import { greedyContinuation, teacherForcedTop1 } from '../src/engine/quality';
import { openOracle } from '../tools/llama-oracle/oracle.mjs';
import { GOLDEN, nodeEngine } from './helpers/hub';

const DRACULA = path.join(sharedModelsDir(), '..', 'eval', 'dracula.txt');

/** Disagreements allowed in this test: at most 2% of positions, each with our top-1 lead under 0.2 logits (median lead ≈ 2). */
const NEAR_TIE = { minTop1: 0.98, maxMargin: 0.2 };

// stories260k Q5_K (its 64-wide rows fall back to Q5_1 blocks) meets the bar only with llama.cpp's whole Q8_1
// product: with the inputs rounded but without the min term on the f16 block sums (src/kernels/min-term.ts) its
// greedy ids followed llama.cpp's for 13% of 128 tokens, with it for all (top-1 510/512). stories260k Q4_1 (greedy
// diverges at token 52 with or without that term, as the CPU reference does) and the Q4_K_M mix miss the bar by a
// near-tie or two (bench/results/gguf-agreement-stories260k.md); they are held to the near-tie check only. So are
// Q4_0 and Q5_0: their top-1 sits at the 99% bar (507 of 512) give or take two near-ties, and which side depends
// on the machine. Same engine commit, llama.cpp 3.21.1's CPU build: Q4_0 509/512 on the earlier session's machine,
// 506/512 on an AMD EPYC (AVX2) one; a last-bit change to RoPE moved Q5_0 from ≥ 507 to 505 there.
const CASES: Array<{ model: string; kinds: GgufKind[]; bar: GgufKind[]; context: number }> = [
  { model: 'stories260k', kinds: ['F32', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_K', 'Q4_K_M'], bar: ['F32', 'Q8_0', 'Q5_K'], context: 512 },
  { model: 'byte-llama-12l', kinds: ['Q4_K', 'Q6_K', 'Q5_K'], bar: ['Q4_K', 'Q6_K', 'Q5_K'], context: 1024 },
];

describe('GGUF files against llama.cpp', () => {
  let hub: HubServer;
  let dir: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvtab-gguf-'));
    hub = await startHubServer({ repos: Object.fromEntries(CASES.map((c) => [`local/${c.model}`, path.join(dir, c.model)])) });
  });
  afterAll(async () => {
    await hub?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const c of CASES) {
    for (const kind of c.kinds) {
      it(`${c.model} ${kind}`, async () => {
        const { file, typeBytes } = await ensureGguf(dir, c.model, kind);
        const engine = nodeEngine();
        const oracle = await openOracle(file, { contextSize: c.context });
        try {
          await engine.load({ kind: 'hub', repo: `local/${c.model}`, baseUrl: hub.baseUrl, file: ggufFileName(c.model, kind) }, { weightDtype: 'f32', kvDtype: 'f32', allLogits: true, prefillChunk: 64 });
          const tok = engine.tokenizer!;
          const model = engine.model!;
          // Blocks are uploaded as the file holds them (no float copy); float matrices become f32, norms are f32.
          const { hiddenSize, numLayers } = model.config;
          const floats = (typeBytes.f16 ?? 0) * 2 + (typeBytes.f32 ?? 0);
          const blocks = Object.entries(typeBytes).filter(([t]) => t !== 'f16' && t !== 'f32').reduce((n, [, b]) => n + b, 0);
          expect(engine.stats().weightBytes).toBe(blocks + floats + (2 * numLayers + 1) * hiddenSize * 4);
          const body = draculaBody(DRACULA);
          const prompt = c.model === 'stories260k' ? GOLDEN.onceUponATime.promptIds : firstTokens(tok, body, 48);
          const ids = await topOneIds(sharedModelsDir(), c.model, GOLDEN.onceUponATime.promptIds, () => firstTokens(tok, body, TOP1_TOKENS));
          const n = greedyTokens(kind);
          const ours = { greedy: await greedyContinuation(model, prompt, n), ...(await teacherForcedTop1(model, ids)) };
          const llama = { greedy: await oracle.greedy(prompt, n), top1: await oracle.teacherForcedTop1(ids) };
          const a = score(kind, ours, llama);
          const what = `${c.model} ${kind}: ${JSON.stringify(a)}`;
          if (exactKind(kind) || c.bar.includes(kind)) expect(a.pass, what).toBe(true);
          // Everywhere: llama.cpp and we disagree only at near-ties, i.e. where our top-1 logit leads the
          // runner-up by far less than the typical lead, and rarely.
          expect(a.top1Agreement, what).toBeGreaterThanOrEqual(NEAR_TIE.minTop1);
          if (a.maxMismatchMargin !== null) expect(a.maxMismatchMargin, what).toBeLessThan(NEAR_TIE.maxMargin);
          if (c.model === 'stories260k' && kind === 'F32') expect(ours.greedy.slice(0, GOLDEN.onceUponATime.ids.length)).toEqual(GOLDEN.onceUponATime.ids);
        } finally {
          await oracle.close();
          await engine.unload();
        }
      }, 120_000);
    }
  }
});
