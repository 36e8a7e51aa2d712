/**
 * The e2e fixture model (e2e/fixtures/fixed-reply-model.ts) really replies with its fixed text and then stops,
 * through the real loader, tokenizer, chat template and stop strings. e2e/safety.spec.ts relies on it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFixedReplyModel } from '../../e2e/fixtures/fixed-reply-model';
import { startHubServer, type HubServer } from '../../scripts/hub-server';
import type { Engine } from '../../src/engine/engine';
import { CHAT_STOP_STRINGS } from '../../src/ui/settings/settings-store';
import { nodeEngine } from '../helpers/hub';

const REPLY = `<img src=x onerror="document.title='pwned'"> and <script>window.__xss = 1</script>`;

describe('fixed-reply fixture model', () => {
  let hub: HubServer;
  let engine: Engine;
  let dir: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvtab-fixed-reply-'));
    await writeFixedReplyModel(dir, REPLY);
    hub = await startHubServer({ repos: { 'local/fixed-reply': dir } });
    engine = nodeEngine();
    await engine.load({ kind: 'hub', repo: 'local/fixed-reply', baseUrl: hub.baseUrl }, { weightDtype: 'f32', kvDtype: 'f32' });
  });
  afterAll(async () => {
    await engine.unload();
    await hub.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('replies with exactly its text, then EOS', async () => {
    const r = await engine.generate([{ role: 'user', content: 'Hello there' }], { maxNewTokens: 8, stop: CHAT_STOP_STRINGS });
    expect(r.text).toBe(REPLY);
    expect(r.tokenIds).toEqual([264]);
    expect(r.finishReason).toBe('eos');
  });
});
