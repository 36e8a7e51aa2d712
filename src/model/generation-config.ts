/**
 * A Hugging Face `generation_config.json`: the model's recommended sampling and its end-of-sequence ids.
 * Pure: no DOM, no GPU (readGenerationConfig reads through a ModelSource).
 *
 * Semantics follow transformers' GenerationConfig exactly, so a model samples here as it does in
 * `model.generate()`:
 * - `do_sample` false or absent is greedy (temperature 0), whatever `temperature`, `top_p` or `top_k` say
 *   (transformers only warns about them). A file with `"temperature": 0.7` and no `do_sample` is greedy.
 * - `do_sample` true samples with the file's `temperature`, `top_p`, `top_k`, each defaulting to transformers'
 *   own default when absent or null: 1.0, 1.0 and 50 (top_k 50 is transformers' default, not "off").
 *   `top_k` 0 is off. `do_sample` true with temperature 0 (which transformers refuses) is read as greedy.
 * - `repetition_penalty` (default 1.0) applies to greedy and sampled decoding alike, as in transformers.
 * - `max_new_tokens` becomes the default reply length. `max_length` (prompt + reply, transformers' default 20)
 *   is ignored: files carry it as the context size, which the engine already enforces, and reading it as a
 *   reply length would be wrong. `num_beams` and other fields are ignored (no beam search here).
 * - `eos_token_id` (a number or a list) adds to the model's EOS set; `bos_token_id` is read as a fallback.
 *
 * Errors are consistent with config.json: a missing file means no defaults; a file that is not JSON, not an
 * object, or has a field of the wrong type or out of range fails the load with a ModelFormatError naming the
 * file and the field (silently wrong sampling is worse than a clear refusal). null counts as absent.
 */
import { ModelFileMissingError, ModelFormatError } from '../errors';
import type { GenerateParams, GenerationDefaults } from '../worker/api';
import type { ModelSource } from './source';

/** The file this module reads. */
export const GENERATION_CONFIG_FILE = 'generation_config.json';

/** The engine's own defaults, used when a model has no generation_config.json: greedy, no penalty. */
export const ENGINE_GENERATION_DEFAULTS: GenerationDefaults = { temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1, source: 'engine' };

/** transformers' GenerationConfig defaults for the sampled fields a file leaves out. */
const TRANSFORMERS_SAMPLING = { temperature: 1, topP: 1, topK: 50 } as const;

/** What a generation_config.json holds, in engine terms. */
export interface GenerationConfig {
  defaults: GenerationDefaults;
  /** Its eos_token_id, as a list (empty when absent). */
  eosTokenIds: number[];
  bosTokenId: number | null;
}

type Json = Record<string, unknown>;

function fieldError(where: string, key: string, expected: string, got: unknown): ModelFormatError {
  return new ModelFormatError(`${where} field "${key}" should be ${expected}, got ${JSON.stringify(got)}. Fix the file or remove the field.`);
}

/** A token id (integer ≥ 0), or a ModelFormatError naming the file and field. */
function tokenId(v: unknown, where: string, key: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw fieldError(where, key, 'a token id (an integer ≥ 0) or a list of them', v);
  return v;
}

/** An `eos_token_id`-style field (a number, a list of numbers, or null/absent) as a list of ids, duplicates removed. */
export function tokenIdList(v: unknown, where: string, key: string): number[] {
  if (v === undefined || v === null) return [];
  const ids = Array.isArray(v) ? v.map((x) => tokenId(x, where, key)) : [tokenId(v, where, key)];
  return [...new Set(ids)];
}

function optional(raw: Json, key: string, where: string, expected: string, ok: (v: number) => boolean, integer = false): number | undefined {
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || !ok(v)) throw fieldError(where, key, expected, v);
  return v;
}

/** Parse a generation_config.json object; `where` names it in errors (e.g. `generation_config.json of org/name`). */
export function parseGenerationConfig(raw: unknown, where: string = GENERATION_CONFIG_FILE): GenerationConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ModelFormatError(`${where} should hold a JSON object.`);
  const cfg = raw as Json;
  const doSample = cfg.do_sample ?? false;
  if (typeof doSample !== 'boolean') throw fieldError(where, 'do_sample', 'true or false', doSample);
  // Every present field is checked, used or not, so a broken file is found whichever way do_sample points.
  const temperature = optional(cfg, 'temperature', where, 'a number ≥ 0', (v) => v >= 0);
  const topP = optional(cfg, 'top_p', where, 'a number in (0, 1]', (v) => v > 0 && v <= 1);
  const topK = optional(cfg, 'top_k', where, 'an integer ≥ 0 (0 = off)', (v) => v >= 0, true);
  const repetitionPenalty = optional(cfg, 'repetition_penalty', where, 'a number > 0 (1 = off)', (v) => v > 0) ?? 1;
  const maxNewTokens = optional(cfg, 'max_new_tokens', where, 'an integer ≥ 1', (v) => v >= 1, true);
  const bos = cfg.bos_token_id;
  const sampled = doSample && (temperature ?? TRANSFORMERS_SAMPLING.temperature) > 0;
  const defaults: GenerationDefaults = {
    temperature: sampled ? (temperature ?? TRANSFORMERS_SAMPLING.temperature) : 0,
    topP: sampled ? (topP ?? TRANSFORMERS_SAMPLING.topP) : 1,
    topK: sampled ? (topK ?? TRANSFORMERS_SAMPLING.topK) : 0,
    repetitionPenalty,
    ...(maxNewTokens !== undefined ? { maxNewTokens } : {}),
    source: 'generation_config.json',
  };
  return {
    defaults,
    eosTokenIds: tokenIdList(cfg.eos_token_id, where, 'eos_token_id'),
    bosTokenId: bos === undefined || bos === null ? null : tokenId(bos, where, 'bos_token_id'),
  };
}

/** Read a source's generation_config.json; null when it has none (or it cannot be fetched, as for other optional files). */
export async function readGenerationConfig(source: ModelSource): Promise<GenerationConfig | null> {
  let text: string;
  try {
    text = await source.text(GENERATION_CONFIG_FILE);
  } catch (err) {
    if (err instanceof ModelFileMissingError) return null;
    throw err;
  }
  const where = `${GENERATION_CONFIG_FILE} of ${source.label}`;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ModelFormatError(`${where} is not valid JSON (${(err as Error).message}).`);
  }
  return parseGenerationConfig(raw, where);
}

/**
 * The params with every sampling field left undefined taken from the model's defaults (temperature, topP, topK,
 * repetitionPenalty, maxNewTokens); explicit values always win. What the defaults leave out, the sampler's
 * own defaults fill (src/engine/sampler.ts: greedy, 256 tokens).
 */
export function withGenerationDefaults(params: GenerateParams, defaults: GenerationDefaults): GenerateParams {
  return {
    ...params,
    temperature: params.temperature ?? defaults.temperature,
    topP: params.topP ?? defaults.topP,
    topK: params.topK ?? defaults.topK,
    repetitionPenalty: params.repetitionPenalty ?? defaults.repetitionPenalty,
    ...(params.maxNewTokens !== undefined || defaults.maxNewTokens !== undefined ? { maxNewTokens: params.maxNewTokens ?? defaults.maxNewTokens } : {}),
  };
}
