/**
 * Which tokens of a chat prompt an eviction must keep: the system prompt and the chat template's own text
 * (each message's header and footer, e.g. `<|im_start|>system\n` … `<|im_end|>\n`, BOS, the generation
 * prompt). The template is rendered by the tokenizer as one text, so the structure is recovered from it:
 * each message's content is found in order in the rendered prompt, everything between contents is template
 * text, and a character offset becomes a token index as the length of the common prefix of the prompt's ids
 * and the ids of the text up to that offset. Pure (given the tokenizer), tested in Node.
 */
import type { ChatTokenizer } from '../model/tokenizer';
import type { ChatMessage } from '../worker/api';
import type { PositionRange } from './cache-contents';

/** Prefix texts kept with their token counts, so that a growing chat encodes each earlier prefix once. */
const MEMO_LIMIT = 512;

/** Finds the protected token ranges of chat prompts, remembering prefix encodings between turns. */
export class PromptStructure {
  private readonly memo = new Map<string, number[]>();

  /** With `encodeChatPrefix`, prefixes encode as the prompt does (message contents as plain text). */
  constructor(private readonly tokenizer: Pick<ChatTokenizer, 'renderChat' | 'encodeRendered'> & Partial<Pick<ChatTokenizer, 'encodeChatPrefix'>>) {}

  /**
   * Protected ranges [start, end) of `ids` (= the encoding of `messages` with the generation prompt): every
   * stretch of template text and the content of system messages. Stops at a message whose content the
   * template does not reproduce verbatim (what was found up to it stays protected).
   */
  protectedRanges(messages: readonly ChatMessage[], ids: readonly number[]): PositionRange[] {
    const text = this.tokenizer.renderChat([...messages], true);
    const tokensAt = (chars: number) => (chars <= 0 ? 0 : chars >= text.length ? ids.length : commonPrefix(this.encode(messages, text.slice(0, chars)), ids));
    const ranges: PositionRange[] = [];
    const add = (start: number, end: number) => {
      if (end <= start) return;
      const last = ranges[ranges.length - 1];
      if (last && last[1] >= start) last[1] = Math.max(last[1], end);
      else ranges.push([start, end]);
    };
    let cursor = 0; // characters of `text` accounted for
    let cursorTokens = 0;
    for (const m of messages) {
      const found = locate(text, m.content, cursor);
      if (!found) return ranges;
      const contentStart = tokensAt(found.start);
      add(cursorTokens, contentStart);
      const contentEnd = tokensAt(found.end);
      if (m.role === 'system') add(contentStart, contentEnd);
      cursor = found.end;
      cursorTokens = contentEnd;
    }
    add(cursorTokens, ids.length);
    return ranges;
  }

  private encode(messages: readonly ChatMessage[], prefix: string): number[] {
    let ids = this.memo.get(prefix);
    if (!ids) {
      ids = this.tokenizer.encodeChatPrefix ? this.tokenizer.encodeChatPrefix([...messages], prefix.length) : this.tokenizer.encodeRendered(prefix);
      if (this.memo.size >= MEMO_LIMIT) this.memo.delete(this.memo.keys().next().value as string);
      this.memo.set(prefix, ids);
    }
    return ids;
  }
}

/** Where `content` (or its trimmed form, as many templates write it) appears in `text` at or after `from`. */
function locate(text: string, content: string, from: number): { start: number; end: number } | null {
  for (const c of [content, content.trim()]) {
    if (c === '') return { start: from, end: from };
    const at = text.indexOf(c, from);
    if (at >= 0) return { start: at, end: at + c.length };
  }
  return null;
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
