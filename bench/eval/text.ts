/**
 * Evaluation inputs for `npm run eval`: the held-out Dracula text (CRLF→LF, Gutenberg header skipped, as in
 * /work/shared/eval/README.md), tokenization with BOS, a seeded RNG, and the passkey-retrieval prompts.
 */
import fs from 'node:fs';
import type { ChatTokenizer } from '../../src/model/tokenizer';

/** Dracula with CRLF→LF, starting at the first line after the `*** START OF` line. */
export function draculaBody(file: string): string {
  const text = fs.readFileSync(file, 'utf8').replace(/\r\n/g, '\n');
  const start = text.indexOf('*** START OF');
  if (start < 0) throw new Error(`${file}: no "*** START OF" line`);
  return text.slice(text.indexOf('\n', start) + 1);
}

/** Encode text and make sure it starts with BOS (byte-llama-12l's config has add_bos_token false). */
export function encodeWithBos(tok: ChatTokenizer, text: string): number[] {
  const ids = tok.encodeText(text);
  if (tok.bosTokenId !== null && ids[0] !== tok.bosTokenId) ids.unshift(tok.bosTokenId);
  return ids;
}

/** The first `n` tokens (BOS included) of `text`; only a prefix of the text is encoded, enough for n tokens. */
export function firstTokens(tok: ChatTokenizer, text: string, n: number): number[] {
  for (let chars = Math.max(256, n * 4); ; chars *= 2) {
    const ids = encodeWithBos(tok, text.slice(0, chars));
    // Drop the last few ids: a cut mid-word may tokenize differently from the whole text.
    if (ids.length >= n + 8 || chars >= text.length) {
      if (ids.length < n) throw new Error(`text has only ${ids.length} tokens, ${n} wanted`);
      return ids.slice(0, n);
    }
  }
}

/** The prose prompt for greedy agreement: `bytes` characters of Chapter I, cut at a word boundary. */
export function draculaProse(body: string, chars: number): string {
  const chapter = body.indexOf('CHAPTER I\n', body.indexOf('CHAPTER I\n') + 1);
  const from = body.indexOf('3 May.', chapter);
  const text = body.slice(from >= 0 ? from : chapter, (from >= 0 ? from : chapter) + chars + 40);
  return text.slice(0, text.lastIndexOf(' ', chars));
}

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One passkey trial: the prompt, the key, and where the needle sits. */
export interface PasskeyTrial {
  key: string;
  /** Requested needle depth, 0 = right after BOS, 1 = just before the question. */
  depth: number;
  prompt: string;
  promptTokens: number;
  /** Token index where the needle sentence starts. */
  needleToken: number;
}

/** Filler sentences (the classic passkey filler), cycled. */
export const FILLER = [
  'The grass is green.',
  'The sky is blue.',
  'The sun is yellow.',
  'Here we go.',
  'There and back again.',
];
export const NEEDLE = (key: string) => `The pass key is ${key}. Remember it. ${key} is the pass key.`;
export const QUESTION = 'What is the pass key? The pass key is';

function filler(sentences: number): string {
  return Array.from({ length: sentences }, (_, i) => FILLER[i % FILLER.length]).join(' ');
}

/**
 * Build `count` trials whose prompts are at most `contextTokens − answerTokens` tokens long: filler sentences,
 * the needle after a random number of them, more filler, then the question. Keys and depths come from `rng`.
 */
export function passkeyTrials(tok: ChatTokenizer, rng: () => number, count: number, contextTokens: number, answerTokens: number): PasskeyTrial[] {
  const budget = contextTokens - answerTokens;
  const build = (key: string, before: number, after: number) => {
    const parts = [filler(before), NEEDLE(key), filler(after), QUESTION].filter((s) => s.length > 0);
    return parts.join(' ');
  };
  // Total filler sentences that fit next to the needle and the question (the key's digits don't change the length).
  let total = 0;
  while (encodeWithBos(tok, build('00000', total + 1, 0)).length <= budget) total++;
  const trials: PasskeyTrial[] = [];
  for (let i = 0; i < count; i++) {
    const key = String(10000 + Math.floor(rng() * 90000));
    const depth = rng();
    const before = Math.round(depth * total);
    const prompt = build(key, before, total - before);
    const promptTokens = encodeWithBos(tok, prompt).length;
    const needleToken = before > 0 ? encodeWithBos(tok, `${filler(before)} `).length : tok.bosTokenId === null ? 0 : 1;
    trials.push({ key, depth, prompt, promptTokens, needleToken });
  }
  return trials;
}
