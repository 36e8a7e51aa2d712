/**
 * Evaluation inputs for `npm run eval`: the held-out Dracula text (CRLF→LF, Gutenberg header skipped, as in
 * /work/shared/eval/README.md), tokenization with BOS, a seeded RNG, and the passkey-retrieval prompts.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ChatTokenizer } from '../../src/model/tokenizer';

/** Dracula with CRLF→LF, starting at the first line after the `*** START OF` line. */
export function draculaBody(file: string): string {
  const text = fs.readFileSync(file, 'utf8').replace(/\r\n/g, '\n');
  const start = text.indexOf('*** START OF');
  if (start < 0) throw new Error(`${file}: no "*** START OF" line`);
  return text.slice(text.indexOf('\n', start) + 1);
}

/** The held-out texts of the divergence protocol: name → body (bench/eval-texts/README.md). */
export function evalTexts(draculaFile: string, root: string): Record<string, string> {
  return {
    dracula: draculaBody(draculaFile),
    lincoln: fs.readFileSync(path.join(root, 'bench/eval-texts/lincoln-annual-messages-1861-1864.txt'), 'utf8'),
  };
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
    // Keep a margin: a cut mid-word may tokenize the last few ids differently from the whole text.
    if (ids.length >= n + 8 || chars >= text.length) {
      if (ids.length < n) throw new Error(`text has only ${ids.length} tokens, ${n} wanted`);
      return ids.slice(0, n);
    }
  }
}

/** Chapter I of the journal, from "3 May. Bistritz": the prose used for greedy prompts and prose filler. */
export function draculaProse(body: string): string {
  const from = body.indexOf('3 May. Bistritz');
  if (from < 0) throw new Error('Dracula text: no "3 May. Bistritz" line');
  return body.slice(from);
}


/**
 * A passkey prompt format: an optional intro, filler units (sentences) with the needle inserted between two
 * of them, then the question, which the model should continue with the key.
 */
export interface PasskeyFormat {
  name: string;
  /** One-line description for the report. */
  describe: string;
  intro: string;
  /** Filler sentences, cycled as needed. */
  filler: string[];
  /** Separator between filler units. */
  joiner: string;
  needle: (key: string) => string;
  question: string;
}

/** The classic filler of the passkey test (Mohtashami & Jaggi 2023, "Landmark Attention"). */
const GRASS = ['The grass is green.', 'The sky is blue.', 'The sun is yellow.', 'Here we go.', 'There and back again.'];

/** Dracula sentences, for a filler like the text the byte model was trained on (books). */
function proseSentences(body: string, count = 400): string[] {
  return draculaProse(body).replace(/\s+/g, ' ').split(/(?<=[.!?]) /).slice(0, count);
}

/** Every format tried; `classic` is the one of the main passkey table. */
export function passkeyFormats(body: string): PasskeyFormat[] {
  const prose = proseSentences(body);
  return [
    {
      name: 'classic',
      describe: 'intro line; filler "The grass is green. The sky is blue. …"; needle "The pass key is K. Remember it. K is the pass key."; question "What is the pass key? The pass key is"',
      intro: 'There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you about the important information there.',
      filler: GRASS,
      joiner: ' ',
      needle: (k) => `The pass key is ${k}. Remember it. ${k} is the pass key.`,
      question: 'What is the pass key? The pass key is',
    },
    {
      name: 'prose-qa',
      describe: 'Dracula sentences as filler; needle "\\n\\nQ: What is the pass key?\\nA: K\\n\\n"; question "\\n\\nQ: What is the pass key?\\nA:"',
      intro: '',
      filler: prose,
      joiner: ' ',
      needle: (k) => `\n\nQ: What is the pass key?\nA: ${k}\n\n`,
      question: '\n\nQ: What is the pass key?\nA:',
    },
    {
      name: 'repeat-3',
      describe: 'Dracula filler; needle "The pass key is K." three times; question "The pass key is"',
      intro: '',
      filler: prose,
      joiner: ' ',
      needle: (k) => `The pass key is ${k}. The pass key is ${k}. The pass key is ${k}.`,
      question: 'The pass key is',
    },
    {
      name: 'label-lines',
      describe: 'Dracula filler; needle "\\nPASS KEY: K" three lines; question "\\nPASS KEY:"',
      intro: '',
      filler: prose,
      joiner: ' ',
      needle: (k) => `\nPASS KEY: ${k}\nPASS KEY: ${k}\nPASS KEY: ${k}\n`,
      question: '\nPASS KEY:',
    },
    {
      name: 'number',
      describe: 'grass filler; needle "The pass key is number K. The pass key is number K."; question "The pass key is number"',
      intro: '',
      filler: GRASS,
      joiner: ' ',
      needle: (k) => `The pass key is number ${k}. The pass key is number ${k}.`,
      question: 'The pass key is number',
    },
  ];
}

/** One passkey trial: the prompt ids, the key, and where the needle sits. */
export interface PasskeyTrial {
  key: string;
  /** Drawn needle depth in [0, 1): the fraction of filler units before the needle. */
  depth: number;
  promptIds: number[];
  /** Token index where the needle starts. */
  needleToken: number;
}

/**
 * `count` trials whose prompt plus `answerTokens` fit in `contextTokens`: as many filler units as fit, the
 * needle after round(depth × units) of them. Keys (5 digits, 10000–99999) and depths come from `rng`, unless
 * `depths` fixes the depths.
 */
export function passkeyTrials(
  tok: ChatTokenizer,
  format: PasskeyFormat,
  rng: () => number,
  count: number,
  contextTokens: number,
  answerTokens: number,
  /** Fixed depths, cycled over the trials (keys still come from rng); by default each depth is drawn. */
  depths?: readonly number[],
): PasskeyTrial[] {
  const units = (n: number) => Array.from({ length: n }, (_, i) => format.filler[i % format.filler.length]);
  const text = (key: string, before: number, after: number) => {
    const fill = units(before + after);
    const head = [format.intro, ...fill.slice(0, before)].filter((p) => p.length > 0);
    const full = [...head, format.needle(key), ...fill.slice(before), format.question].filter((p) => p.length > 0);
    return { head: head.length ? head.join(format.joiner) + format.joiner : '', full: full.join(format.joiner) };
  };
  const budget = contextTokens - answerTokens;
  // Filler units that fit next to the needle and the question (a key's digits do not change the length).
  let lo = 0;
  let hi = 1;
  while (encodeWithBos(tok, text('00000', hi, 0).full).length <= budget) hi *= 2;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (encodeWithBos(tok, text('00000', mid, 0).full).length <= budget) lo = mid;
    else hi = mid;
  }
  const total = lo;
  const trials: PasskeyTrial[] = [];
  for (let i = 0; i < count; i++) {
    const key = String(10000 + Math.floor(rng() * 90000));
    const drawn = rng();
    const depth = depths ? depths[i % depths.length] : drawn;
    const before = Math.round(depth * total);
    const t = text(key, before, total - before);
    const promptIds = encodeWithBos(tok, t.full);
    if (promptIds.length > budget) throw new Error(`passkey prompt of ${promptIds.length} tokens exceeds ${budget}`);
    const needleToken = t.head.length ? encodeWithBos(tok, t.head).length : tok.bosTokenId === null ? 0 : 1;
    trials.push({ key, depth, promptIds, needleToken });
  }
  return trials;
}

/** The key a continuation gives: its first run of digits, or null. */
export function answeredKey(continuation: string): string | null {
  return /\d+/.exec(continuation)?.[0] ?? null;
}
