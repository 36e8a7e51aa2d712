/**
 * Layouts whose cache is reserved up front (quality tasks, budgeted chats): the buffers never change, so a
 * recorded step plan is reused for every later step with the same step key. Each layout's key must therefore
 * say which optional passes (KIVI flushes) a step runs — a merged layout over a KIVI base once returned no
 * key, and its base layers reused a plan recorded for a step that did not flush. Logits at every position
 * against the CPU reference of the same mode, 64-token chunks as `npm run eval` reads them.
 */
import { describe, expect, it } from 'vitest';
import { referenceKvFor } from '../../src/reference/kv-for-mode';
import type { KvModeSpec } from '../../src/worker/api';
import { compareModeForward, stories260kModeRig } from '../helpers/mode-rig';

describe('caches reserved up front reuse their step plans correctly', () => {
  const rig = stories260kModeRig(64, 460);
  const specs: KvModeSpec[] = [{ mode: 'merge+kivi' }, { mode: 'merge+kivi', bits: 4 }, { mode: 'kivi', bits: 2 }, { mode: 'zip' }, { mode: 'merge' }];
  for (const spec of specs) {
    it(`${JSON.stringify(spec)} reserved to 456 tokens: logits match the same-mode reference`, async () => {
      await rig.engine.setKvMode(spec);
      rig.engine.model!.kv.reserve(456); // compareModeForward resets the cache, which keeps this allocation
      const r = await compareModeForward(rig, referenceKvFor(rig.shape, spec), [64, 64, 64, 64, 64, 64, 64], 8);
      // The same tolerance as modes-forward for flip-prone 2-bit codes; a stale plan gives errors of the order of vsFull.
      expect(r.worst).toBeLessThan(Math.max(1e-3, 2e-3 * r.vsFull));
      expect(r.pos).toBe(456);
    });
  }
});
