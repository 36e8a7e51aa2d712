/**
 * Tokenizer glue: transformers.js does the BPE, normalization and chat-template rendering; this module feeds
 * it files read through a ModelSource (never its own network or cache code) and adds BOS/EOS policy, a plain
 * chat fallback and streaming decode.
 */
import type { PreTrainedTokenizer } from '@huggingface/transformers';
import { EngineError, ModelFileMissingError, ModelFormatError } from '../errors';
import type { ChatMessage } from '../worker/api';
import { anyContentTouches, chatSegments, shieldedText, standIn, truncateSegments, type ChatSegment } from './chat-text';
import type { ModelSource } from './source';

/** What the engine needs from a tokenizer. */
export interface ChatTokenizer {
  /** Encode plain text, adding BOS as the model's tokenizer config says. */
  encodeText(text: string): number[];
  /** Render a conversation (chat template, or the plain fallback) with a generation prompt and encode it. */
  encodeChat(messages: ChatMessage[]): number[];
  /** The prompt text `encodeChat` encodes (without the assistant's generation prompt when `addGenerationPrompt` is false). */
  renderChat(messages: ChatMessage[], addGenerationPrompt?: boolean): string;
  /**
   * Encode a rendered chat prompt as one text, special tokens parsed everywhere (as `encodeChat` does when no
   * message content holds a special token's text).
   */
  encodeRendered(text: string): number[];
  /**
   * The ids of the first `chars` characters of the rendered prompt of `messages` (with the generation prompt),
   * encoded as `encodeChat` encodes them: message contents as plain text.
   */
  encodeChatPrefix(messages: ChatMessage[], chars: number): number[];
  /** False when the model has no chat template and `encodeChat` uses the plain fallback format. */
  hasChatTemplate: boolean;
  /** Decode ids to text, special tokens included. */
  decode(ids: number[]): string;
  /** Ids that end generation: the tokenizer's eos_token plus the ids passed to loadTokenizer. */
  eosTokenIds: number[];
  /** BOS id, or null when the tokenizer has none. */
  bosTokenId: number | null;
}

/**
 * The prompt used when a model has no chat template: one "Role: content" line per message, then "Assistant:".
 * Base models continue it reasonably; the UI should say that the model was not trained for chat.
 */
export function renderPlainChat(messages: readonly ChatMessage[], addGenerationPrompt = true): string {
  const label = { system: 'System', user: 'User', assistant: 'Assistant' } as const;
  return messages.map((m) => `${label[m.role]}: ${m.content}\n`).join('') + (addGenerationPrompt ? 'Assistant:' : '');
}

type Json = Record<string, unknown>;

async function readJson(source: ModelSource, file: string): Promise<Json> {
  const text = await source.text(file);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ModelFormatError(`${file} of ${source.label} is not valid JSON (${(err as Error).message}).`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ModelFormatError(`${file} of ${source.label} should hold a JSON object.`);
  }
  return parsed as Json;
}

async function readOptionalJson(source: ModelSource, file: string): Promise<Json> {
  try {
    return await readJson(source, file);
  } catch (err) {
    if (err instanceof ModelFileMissingError) return {};
    throw err;
  }
}

/**
 * Load `tokenizer.json` and (optional) `tokenizer_config.json` from `source`. `extraEosIds` (usually
 * config.json's eos_token_id) are added to the tokenizer's own EOS. Throws ModelFileMissingError or
 * ModelFormatError.
 */
export async function loadTokenizer(source: ModelSource, extraEosIds: readonly number[] = []): Promise<ChatTokenizer> {
  const tokenizerJson = await readJson(source, 'tokenizer.json');
  const config = await readOptionalJson(source, 'tokenizer_config.json');
  if (config.chat_template == null && (await source.has('chat_template.jinja'))) {
    // Newer hub repos keep the template in its own file.
    config.chat_template = await source.text('chat_template.jinja');
  }
  return tokenizerFromJson(tokenizerJson, config, extraEosIds, `tokenizer.json of ${source.label}`);
}

/** Contents of the added tokens marked special: the only ones chat content must not produce. */
function specialTokensOf(tokenizerJson: Json): string[] {
  const added = Array.isArray(tokenizerJson.added_tokens) ? (tokenizerJson.added_tokens as Json[]) : [];
  return added.filter((t) => t.special === true && typeof t.content === 'string' && t.content !== '').map((t) => t.content as string);
}

/** tokenizer.json with every special token renamed to its stand-in (same id), so typed markers are plain text. */
function shieldedJson(tokenizerJson: Json, specials: readonly string[]): Json {
  const index = new Map(specials.map((s, i) => [s, i]));
  const added = (tokenizerJson.added_tokens ?? []) as Json[];
  return {
    ...tokenizerJson,
    added_tokens: added.map((t) => (t.special === true && index.has(t.content as string) ? { ...t, content: standIn(index.get(t.content as string) as number) } : t)),
  };
}

/**
 * A tokenizer from a tokenizer.json object and a tokenizer_config object (read from files, or converted from
 * a GGUF file's metadata). `where` names their origin in error messages.
 */
export async function tokenizerFromJson(tokenizerJson: Json, config: Json, extraEosIds: readonly number[], where: string): Promise<ChatTokenizer> {
  // Imported lazily: the library is large and only the tokenizer part is used.
  const { PreTrainedTokenizer, env } = await import('@huggingface/transformers');
  env.allowRemoteModels = false; // belt and braces: nothing here should reach the network
  let tok: PreTrainedTokenizer;
  try {
    tok = new PreTrainedTokenizer(tokenizerJson, config);
  } catch (err) {
    throw new ModelFormatError(`The tokenizer in ${where} could not be loaded (${(err as Error).message}).`);
  }
  const specials = specialTokensOf(tokenizerJson);
  const shielded = () => new PreTrainedTokenizer(shieldedJson(tokenizerJson, specials), { ...config, chat_template: undefined });
  return new HfChatTokenizer(tok, config, extraEosIds, where, specials, shielded);
}

class HfChatTokenizer implements ChatTokenizer {
  readonly hasChatTemplate: boolean;
  readonly eosTokenIds: number[];
  readonly bosTokenId: number | null;
  private readonly addBos: boolean | undefined;
  private readonly cleanUpSpaces: boolean;
  private shieldedTok: PreTrainedTokenizer | null = null;
  private postProcessed: { prefix: number[]; suffix: number[] } | null = null;

  constructor(
    private readonly tok: PreTrainedTokenizer,
    config: Json,
    extraEosIds: readonly number[],
    private readonly label: string,
    /** Special token contents, which chat content must not produce. */
    private readonly specials: readonly string[],
    /** The tokenizer with special tokens renamed, built the first time a message holds a special token's text. */
    private readonly makeShielded: () => PreTrainedTokenizer,
  ) {
    this.hasChatTemplate = config.chat_template != null && config.chat_template !== '';
    this.bosTokenId = validId(tok.bos_token_id);
    const eos = validId(tok.eos_token_id);
    this.eosTokenIds = [...new Set([...(eos === null ? [] : [eos]), ...extraEosIds])];
    this.addBos = typeof config.add_bos_token === 'boolean' ? config.add_bos_token : undefined;
    // transformers.js defaults this to true when the config is silent; HF Python now defaults to false, and
    // false keeps streamed decoding (window by window) identical to a whole decode.
    this.cleanUpSpaces = config.clean_up_tokenization_spaces === true;
  }

  encodeText(text: string): number[] {
    return this.withBosPolicy(this.tok.encode(text, { add_special_tokens: true }), () => this.tok.encode(text, { add_special_tokens: false })[0] === this.bosTokenId);
  }

  /** The post-processor decides BOS; an explicit add_bos_token in the config overrides it. */
  private withBosPolicy(ids: number[], textStartsWithBos: () => boolean): number[] {
    const bos = this.bosTokenId;
    if (bos === null) return ids;
    if (this.addBos === true && ids[0] !== bos) ids.unshift(bos);
    if (this.addBos === false && ids[0] === bos && !textStartsWithBos()) ids.shift();
    return ids;
  }

  /** The segments of a chat prompt: template text and message contents. */
  private segments(messages: readonly ChatMessage[], addGenerationPrompt: boolean): ChatSegment[] {
    return chatSegments((m) => this.renderChat(m, addGenerationPrompt), messages);
  }

  /**
   * Encode a segmented prompt. While no content holds (or borders on) a special token's text, that is the
   * text encoded as a whole; otherwise the shielded tokenizer encodes it, where only the template's markers
   * (as stand-ins) are special.
   */
  private encodeSegments(segments: readonly ChatSegment[]): number[] {
    const text = segments.map((s) => s.text).join('');
    if (!anyContentTouches(this.specials, segments)) return this.encodeRendered(text);
    this.shieldedTok ??= this.makeShielded();
    const ids = this.shieldedTok.encode(shieldedText(this.specials, segments), { add_special_tokens: false });
    if (this.hasChatTemplate) return ids;
    // The plain fallback is ordinary text: the post-processor's tokens (BOS) around it, as encodeText adds them.
    const { prefix, suffix } = (this.postProcessed ??= this.postProcessorTokens());
    return this.withBosPolicy([...prefix, ...ids, ...suffix], () => false);
  }

  /** The ids the post-processor puts around a text (BOS, EOS), found by encoding a probe both ways. */
  private postProcessorTokens(): { prefix: number[]; suffix: number[] } {
    const withSpecial = this.tok.encode('a', { add_special_tokens: true });
    const bare = this.tok.encode('a', { add_special_tokens: false });
    for (let i = 0; i + bare.length <= withSpecial.length; i++) {
      if (bare.every((id, k) => withSpecial[i + k] === id)) return { prefix: withSpecial.slice(0, i), suffix: withSpecial.slice(i + bare.length) };
    }
    return { prefix: [], suffix: [] };
  }

  renderChat(messages: ChatMessage[], addGenerationPrompt = true): string {
    if (!this.hasChatTemplate) return renderPlainChat(messages, addGenerationPrompt);
    try {
      return this.tok.apply_chat_template(messages, { tokenize: false, add_generation_prompt: addGenerationPrompt });
    } catch (err) {
      throw new EngineError(`The chat template of ${this.label} failed to render: ${(err as Error).message}`);
    }
  }

  encodeChat(messages: ChatMessage[]): number[] {
    return this.encodeSegments(this.segments(messages, true));
  }

  encodeChatPrefix(messages: ChatMessage[], chars: number): number[] {
    return this.encodeSegments(truncateSegments(this.segments(messages, true), chars));
  }

  encodeRendered(text: string): number[] {
    // Templates write BOS themselves; the plain fallback is ordinary text and gets the usual BOS handling.
    return this.hasChatTemplate ? this.tok.encode(text, { add_special_tokens: false }) : this.encodeText(text);
  }

  decode(ids: number[]): string {
    if (ids.length === 0) return ''; // transformers.js rejects an empty list
    return this.tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: this.cleanUpSpaces });
  }
}

function validId(id: unknown): number | null {
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 ? id : null;
}

/** How many prompt tokens of context the decoder keeps, so the first generated token decodes as in context. */
const PROMPT_CONTEXT = 4;
/** Ids the window grows to before it is cut back to PROMPT_CONTEXT ids of context. */
const MAX_WINDOW = 16;

/**
 * Streams generated ids as text. Like text-generation-inference's decoder, it decodes only a small window (a few
 * ids already emitted, as context, plus the ids since) and returns what that adds to the context's text.
 * Text ending in U+FFFD (an incomplete UTF-8 sequence split over byte tokens) is held until it completes.
 */
export class IncrementalDecoder {
  private window: number[];
  /** Window ids [0, readOffset) were already emitted; they are kept as context for the next decode. */
  private readOffset: number;
  private prefixText: string;

  /** `promptIds`, when given, provide context so that the first token's leading space survives decoding. */
  constructor(
    private readonly tok: Pick<ChatTokenizer, 'decode'>,
    promptIds: readonly number[] = [],
  ) {
    this.window = promptIds.slice(-PROMPT_CONTEXT);
    this.readOffset = this.window.length;
    this.prefixText = tok.decode(this.window);
  }

  /** Add one generated id; returns the newly visible text (possibly empty). */
  push(id: number): string {
    this.window.push(id);
    const text = this.tok.decode(this.window);
    if (text.length <= this.prefixText.length || text.endsWith('\uFFFD')) return '';
    const added = text.slice(this.prefixText.length);
    this.readOffset = this.window.length;
    if (this.window.length > MAX_WINDOW) {
      // Keep the last ids as context and decode them once; until then the window's own text is the prefix,
      // so a token costs one decode, not two.
      this.window = this.window.slice(-PROMPT_CONTEXT);
      this.readOffset = this.window.length;
      this.prefixText = this.tok.decode(this.window);
    } else {
      this.prefixText = text;
    }
    return added;
  }

  /** Text still held back (an incomplete character at the very end); call once generation is over. */
  flush(): string {
    if (this.readOffset === this.window.length) return '';
    const text = this.tok.decode(this.window);
    this.window = this.window.slice(this.readOffset);
    this.readOffset = this.window.length;
    const added = text.length > this.prefixText.length ? text.slice(this.prefixText.length) : '';
    this.prefixText = this.tok.decode(this.window);
    return added;
  }
}
