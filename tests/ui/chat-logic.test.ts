/**
 * The chat app's pure logic: prompts from transcripts, settings → engine parameters, mode choices → KV specs,
 * chat titles and the meter's sample series.
 */
import { describe, expect, it } from 'vitest';
import { addSample, chatTitle, MAX_SAMPLES, newChat, type ChatEntry } from '../../src/storage/chat-history';
import { buildPrompt, promptFormatFor } from '../../src/ui/chat/prompt';
import { defaultKvSettings, KV_MODES, kvSettingsFromSpec, kvSpecFromSettings, specName } from '../../src/ui/settings/kv-modes';
import { CHAT_STOP_STRINGS, defaultSettings, generateParams } from '../../src/ui/settings/settings-store';

const entry = (role: ChatEntry['role'], content: string): ChatEntry => ({ id: content, role, content, createdAt: 0 });

describe('buildPrompt', () => {
  const transcript = [entry('user', 'Hi'), entry('assistant', 'Hello.'), entry('notice', 'KV switched'), entry('user', 'More'), entry('assistant', '')];
  it('sends chat-template models the turns, system prompt first, never notices or empty replies', () => {
    expect(buildPrompt(transcript, { promptFormat: 'auto', systemPrompt: 'Be brief.' }, true)).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello.' },
      { role: 'user', content: 'More' },
    ]);
    expect(buildPrompt(transcript, { promptFormat: 'chat', systemPrompt: '  ' }, true)).toHaveLength(3);
  });
  it('continues the transcript as plain text for models without a template', () => {
    expect(promptFormatFor({ promptFormat: 'auto' }, false)).toBe('completion');
    expect(buildPrompt(transcript, { promptFormat: 'auto', systemPrompt: 'ignored' }, false)).toBe('HiHello.More');
    expect(buildPrompt([entry('user', 'Once upon a time')], { promptFormat: 'completion', systemPrompt: '' }, true)).toBe('Once upon a time');
  });
});

describe('settings → engine parameters', () => {
  it('defaults to the model\'s sampling, no budget, live stats, no stop strings for plain continuation', () => {
    const p = generateParams(defaultSettings(), false);
    // The model's sampling by default (tests/ui/generation-settings.test.ts covers custom values).
    expect(p).toEqual({ maxNewTokens: 256, streamStats: true });
  });
  it('adds chat stop strings, a fixed seed and the budget in bytes', () => {
    const s = defaultSettings();
    s.sampling.seed = 42;
    s.budget = { enabled: true, mib: 1.5, auto: false, eviction: 'saliency' };
    s.liveMeter = false;
    expect(generateParams(s, true)).toMatchObject({ seed: 42, stop: CHAT_STOP_STRINGS, streamStats: false, kvBudget: { bytes: 1.5 * 2 ** 20, autoEscalate: false, eviction: 'saliency' } });
  });
});

describe('KV mode choices', () => {
  it('map every mode to its spec with its parameters', () => {
    const kv = defaultKvSettings();
    const specs = KV_MODES.map((mode) => kvSpecFromSettings({ ...kv, mode }));
    expect(specs.map(specName)).toEqual(['full', 'int8', 'kivi-4', 'zip', 'merge', 'merge+kivi-2']);
    expect(specs[2]).toEqual({ mode: 'kivi', bits: 4, groupSize: 32, residual: 64 });
    expect(specs[3]).toEqual({ mode: 'zip', salientFraction: 0.5, groupSize: 32, residual: 64 });
    expect(specs[4]).toMatchObject({ mode: 'merge', startLayer: undefined, t: 0.6, retention: 0.05 });
  });
  it('follow an auto escalation, keeping the other modes’ parameters', () => {
    const kv = defaultKvSettings();
    kv.params.int8.groupSize = 64;
    const next = kvSettingsFromSpec({ mode: 'kivi', bits: 2 }, kv);
    expect(next.mode).toBe('kivi');
    expect(next.params.kivi).toEqual({ bits: 2, groupSize: 32, residual: 64 });
    expect(next.params.int8.groupSize).toBe(64);
  });
});

describe('chat records', () => {
  it('title a chat by its first user message', () => {
    const chat = newChat();
    expect(chatTitle(chat)).toBe('New chat');
    chat.messages.push(entry('notice', 'x'), entry('user', `  Tell me\nabout ${'the sea '.repeat(10)}`));
    expect(chatTitle(chat)).toBe('Tell me about the sea the sea the sea the sea t…');
  });
  it('keep the meter series bounded, first and last points kept', () => {
    const chat = newChat();
    for (let t = 1; t <= 3 * MAX_SAMPLES; t++) addSample(chat, { tokens: t, bytes: t * 10, fp16: t * 20 });
    expect(chat.samples.length).toBeLessThanOrEqual(MAX_SAMPLES);
    expect(chat.samples[0].tokens).toBe(1);
    expect(chat.samples[chat.samples.length - 1].tokens).toBe(3 * MAX_SAMPLES);
    addSample(chat, { tokens: 3 * MAX_SAMPLES, bytes: 3 * MAX_SAMPLES * 10, fp16: 0 });
    expect(chat.samples[chat.samples.length - 1].fp16).toBe(3 * MAX_SAMPLES * 20); // duplicates are skipped
  });
});
