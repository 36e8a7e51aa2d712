/**
 * Chat text is text: what a user or system message says is encoded as its characters, so a typed
 * `<|im_end|><|im_start|>system` never becomes the template's control tokens. The rendered prompt is split
 * into the template's own text and each message's content (the template is rendered once with placeholders
 * for the contents); only the template's text may hold special tokens. Pure, tested in Node.
 */
import type { ChatMessage } from '../worker/api';

/** A stretch of a rendered prompt: the template's text, or (content: true) what a message says. */
export interface ChatSegment {
  text: string;
  content: boolean;
}

/**
 * Noncharacters (U+FDD0–U+FDEF are reserved for a program's internal use): placeholders for contents and
 * stand-ins for special tokens. The same code points typed into a message are replaced by U+FFFD.
 */
const PLACEHOLDER = /\uFDD2(\d+)\uFDD3/g;
const NONCHARACTERS = /[\uFDD0-\uFDEF]/g;
const placeholder = (i: number) => `\uFDD2${i}\uFDD3`;
/** The stand-in for special token `i` in the shielded tokenizer. */
export const standIn = (i: number) => `\uFDD0${i.toString(36)}\uFDD1`;

/**
 * The rendered prompt as template and content segments. `render` is the chat template. A template that
 * changes content (beyond placing it) renders differently with placeholders; then each content is looked up
 * in order in the real rendering, as it appears there.
 */
export function chatSegments(render: (messages: ChatMessage[]) => string, messages: readonly ChatMessage[]): ChatSegment[] {
  const real = render([...messages]);
  const masked = render(messages.map((m, i) => ({ ...m, content: placeholder(i) })));
  const segments: ChatSegment[] = [];
  const push = (text: string, content: boolean) => {
    if (text === '') return;
    const last = segments[segments.length - 1];
    if (last && last.content === content) last.text += text;
    else segments.push({ text, content });
  };
  // Contents as they are, or trimmed (templates often write `content | trim`).
  for (const form of [(c: string) => c, (c: string) => c.trim()]) {
    segments.length = 0;
    let at = 0;
    for (const m of masked.matchAll(PLACEHOLDER)) {
      push(masked.slice(at, m.index), false);
      push(form(messages[Number(m[1])]?.content ?? ''), true);
      at = m.index + m[0].length;
    }
    push(masked.slice(at), false);
    if (segments.map((s) => s.text).join('') === real) return segments;
  }
  return locatedSegments(real, messages);
}

/** Segments found by looking up each message's content (or its trimmed form) in order in the rendered text. */
function locatedSegments(text: string, messages: readonly ChatMessage[]): ChatSegment[] {
  const segments: ChatSegment[] = [];
  let cursor = 0;
  for (const m of messages) {
    for (const c of [m.content, m.content.trim()]) {
      const found = c === '' ? -1 : text.indexOf(c, cursor);
      if (found < 0) continue;
      if (found > cursor) segments.push({ text: text.slice(cursor, found), content: false });
      segments.push({ text: c, content: true });
      cursor = found + c.length;
      break;
    }
  }
  if (cursor < text.length) segments.push({ text: text.slice(cursor), content: false });
  return segments;
}

/** The first `chars` characters of a segmented prompt. */
export function truncateSegments(segments: readonly ChatSegment[], chars: number): ChatSegment[] {
  const out: ChatSegment[] = [];
  let left = chars;
  for (const s of segments) {
    if (left <= 0) break;
    out.push(s.text.length <= left ? s : { text: s.text.slice(0, left), content: s.content });
    left -= s.text.length;
  }
  return out;
}

/** Whether content next to template text could produce a special token: it holds one, or one straddles an edge. */
export function touchesSpecial(specials: readonly string[], content: string, before: string, after: string): boolean {
  for (const s of specials) {
    if (content.includes(s)) return true;
    for (let k = 1; k < s.length; k++) {
      if (content.endsWith(s.slice(0, k)) && after.startsWith(s.slice(k))) return true;
      if (content.startsWith(s.slice(k)) && before.endsWith(s.slice(0, k))) return true;
    }
  }
  return false;
}

/** Whether any content segment of a prompt touches a special token. */
export function anyContentTouches(specials: readonly string[], segments: readonly ChatSegment[]): boolean {
  return segments.some((s, i) => s.content && touchesSpecial(specials, s.text, segments[i - 1]?.text ?? '', segments[i + 1]?.text ?? ''));
}

/**
 * The text the shielded tokenizer (special tokens renamed to their stand-ins) encodes: template text with each
 * special token replaced by its stand-in, contents as they are (noncharacters in them replaced by U+FFFD).
 * Encoded in one pass, it splits into the same sections as the original text would, so everything but typed
 * special tokens encodes as before.
 */
export function shieldedText(specials: readonly string[], segments: readonly ChatSegment[]): string {
  const index = new Map(specials.map((s, i) => [s, i]));
  // Longest first, so that the alternation matches like the tokenizer's splitter (leftmost, then longest).
  const pattern = specials.length
    ? new RegExp([...specials].sort((a, b) => b.length - a.length).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g')
    : null;
  return segments
    .map((s) => (s.content ? s.text.replace(NONCHARACTERS, '\uFFFD') : pattern ? s.text.replace(pattern, (m) => standIn(index.get(m) as number)) : s.text))
    .join('');
}
