/**
 * A small, safe Markdown subset for model output: paragraphs, headings, fenced code, inline code, bold,
 * italic, lists, quotes, rules and http(s)/mailto links. `parseMarkdown` is pure (tested in Node); the
 * renderer builds DOM nodes with textContent only, so model text can never become markup: `<img onerror>`
 * in the output shows as those characters. Unfinished syntax (mid-stream) renders as plain text.
 */

/** An inline span. */
export type Inline =
  | { type: 'text'; text: string }
  | { type: 'code'; text: string }
  | { type: 'strong' | 'em'; children: Inline[] }
  | { type: 'link'; href: string; children: Inline[] };

/** A block. */
export type Block =
  | { type: 'paragraph'; lines: Inline[][] }
  | { type: 'heading'; level: number; content: Inline[] }
  | { type: 'code'; lang: string; text: string }
  | { type: 'list'; ordered: boolean; items: Inline[][] }
  | { type: 'quote'; lines: Inline[][] }
  | { type: 'rule' };

const FENCE = /^\s{0,3}(```|~~~)\s*([\w+-]*)\s*$/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
const ORDERED = /^\s{0,3}\d{1,9}[.)]\s+(.*)$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;
const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;

/** Parse Markdown text into blocks. */
export function parseMarkdown(text: string): Block[] {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const blocks: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = FENCE.exec(line);
    if (fence) {
      const body: string[] = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) body.push(lines[i++]);
      i++; // closing fence (or past the end while streaming)
      blocks.push({ type: 'code', lang: fence[2], text: body.join('\n') });
      continue;
    }
    if (line.trim() === '') {
      i++;
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      blocks.push({ type: 'heading', level: heading[1].length, content: parseInline(heading[2]) });
      i++;
      continue;
    }
    if (RULE.test(line)) {
      blocks.push({ type: 'rule' });
      i++;
      continue;
    }
    const listKind = BULLET.test(line) ? BULLET : ORDERED.test(line) ? ORDERED : null;
    if (listKind) {
      const items: Inline[][] = [];
      while (i < lines.length && listKind.test(lines[i])) items.push(parseInline((listKind.exec(lines[i++]) as RegExpExecArray)[1]));
      blocks.push({ type: 'list', ordered: listKind === ORDERED, items });
      continue;
    }
    if (QUOTE.test(line)) {
      const quoted: Inline[][] = [];
      while (i < lines.length && QUOTE.test(lines[i])) quoted.push(parseInline((QUOTE.exec(lines[i++]) as RegExpExecArray)[1]));
      blocks.push({ type: 'quote', lines: quoted });
      continue;
    }
    const para: Inline[][] = [];
    while (i < lines.length && lines[i].trim() !== '' && !startsBlock(lines[i])) para.push(parseInline(lines[i++]));
    blocks.push({ type: 'paragraph', lines: para });
  }
  return blocks;
}

function startsBlock(line: string): boolean {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || BULLET.test(line) || ORDERED.test(line) || QUOTE.test(line);
}

/** Inline patterns, tried at each position; the earliest match wins. */
const INLINE = /`([^`\n]+)`|\*\*(?=\S)([^\n]*?\S)\*\*|(?<![\w])__(?=\S)([^\n]*?\S)__(?![\w])|\*(?=[^\s*])([^*\n]*?[^\s*])\*|(?<![\w])_(?=[^\s_])([^_\n]*?[^\s_])_(?![\w])|\[([^\]\n]+)\]\(([^)\s]+)\)/g;

/** Parse inline spans of one line. */
export function parseInline(text: string): Inline[] {
  const out: Inline[] = [];
  let last = 0;
  INLINE.lastIndex = 0;
  for (let m = INLINE.exec(text); m; m = INLINE.exec(text)) {
    if (m.index > last) out.push({ type: 'text', text: text.slice(last, m.index) });
    const [whole, code, strong1, strong2, em1, em2, linkText, href] = m;
    if (code !== undefined) out.push({ type: 'code', text: code });
    else if (strong1 !== undefined || strong2 !== undefined) out.push({ type: 'strong', children: parseNested(strong1 ?? strong2) });
    else if (em1 !== undefined || em2 !== undefined) out.push({ type: 'em', children: parseNested(em1 ?? em2) });
    else {
      const safe = safeHref(href);
      out.push(safe ? { type: 'link', href: safe, children: parseNested(linkText) } : { type: 'text', text: whole });
    }
    last = m.index + whole.length;
  }
  if (last < text.length) out.push({ type: 'text', text: text.slice(last) });
  return out;
}

function parseNested(text: string): Inline[] {
  const saved = INLINE.lastIndex;
  const inner = parseInline(text);
  INLINE.lastIndex = saved;
  return inner;
}

/** The href when it is an absolute http(s) or mailto URL; null otherwise (javascript:, data:, relative…). */
export function safeHref(href: string): string | null {
  try {
    const url = new URL(href);
    return url.protocol === 'http:' || url.protocol === 'https:' || url.protocol === 'mailto:' ? url.href : null;
  } catch {
    return null;
  }
}

function renderInline(parent: Node, spans: Inline[]): void {
  for (const s of spans) {
    if (s.type === 'text') parent.appendChild(document.createTextNode(s.text));
    else if (s.type === 'code') {
      const code = document.createElement('code');
      code.textContent = s.text;
      parent.appendChild(code);
    } else if (s.type === 'link') {
      const a = document.createElement('a');
      a.href = s.href;
      a.target = '_blank';
      a.rel = 'noopener noreferrer nofollow';
      renderInline(a, s.children);
      parent.appendChild(a);
    } else {
      const node = document.createElement(s.type);
      renderInline(node, s.children);
      parent.appendChild(node);
    }
  }
}

function renderLines(parent: HTMLElement, lines: Inline[][]): void {
  lines.forEach((line, i) => {
    if (i > 0) parent.appendChild(document.createElement('br'));
    renderInline(parent, line);
  });
}

/** Render Markdown text as DOM nodes (no HTML parsing anywhere). */
export function renderMarkdown(text: string): DocumentFragment {
  const frag = document.createDocumentFragment();
  for (const b of parseMarkdown(text)) {
    switch (b.type) {
      case 'paragraph': {
        const p = document.createElement('p');
        renderLines(p, b.lines);
        frag.appendChild(p);
        break;
      }
      case 'heading': {
        const h = document.createElement(`h${Math.min(6, b.level + 2)}` as 'h3');
        renderInline(h, b.content);
        frag.appendChild(h);
        break;
      }
      case 'code': {
        const pre = document.createElement('pre');
        const code = document.createElement('code');
        if (b.lang) code.dataset.lang = b.lang;
        code.textContent = b.text;
        pre.appendChild(code);
        frag.appendChild(pre);
        break;
      }
      case 'list': {
        const list = document.createElement(b.ordered ? 'ol' : 'ul');
        for (const item of b.items) {
          const li = document.createElement('li');
          renderInline(li, item);
          list.appendChild(li);
        }
        frag.appendChild(list);
        break;
      }
      case 'quote': {
        const q = document.createElement('blockquote');
        renderLines(q, b.lines);
        frag.appendChild(q);
        break;
      }
      case 'rule':
        frag.appendChild(document.createElement('hr'));
        break;
    }
  }
  return frag;
}

/** Render model text into `target`, replacing its content: Markdown, or plain text (white-space kept by CSS). */
export function renderModelText(target: HTMLElement, text: string, format: 'markdown' | 'text'): void {
  if (format === 'text') {
    target.textContent = text;
    target.classList.add('plain');
    return;
  }
  target.classList.remove('plain');
  target.replaceChildren(renderMarkdown(text));
}
