/**
 * The Markdown subset parser used for model output (src/ui/markdown.ts). Rendering builds DOM nodes from
 * these blocks with textContent only; e2e/safety.spec.ts checks the rendered page.
 */
import { describe, expect, it } from 'vitest';
import { parseInline, parseMarkdown, safeHref } from '../../src/ui/markdown';

describe('parseMarkdown', () => {
  it('keeps HTML as plain text', () => {
    const payload = 'Look: <img src=x onerror=alert(1)> and <script>alert(2)</script>';
    expect(parseMarkdown(payload)).toEqual([{ type: 'paragraph', lines: [[{ type: 'text', text: payload }]] }]);
  });

  it('parses headings, lists, quotes, rules and paragraphs with line breaks', () => {
    const blocks = parseMarkdown('# Title\n\nline one\nline two\n\n- a\n- **b**\n\n1. first\n2. second\n\n> quoted\n\n---');
    expect(blocks.map((b) => b.type)).toEqual(['heading', 'paragraph', 'list', 'list', 'quote', 'rule']);
    expect(blocks[1]).toEqual({ type: 'paragraph', lines: [[{ type: 'text', text: 'line one' }], [{ type: 'text', text: 'line two' }]] });
    expect(blocks[2]).toEqual({ type: 'list', ordered: false, items: [[{ type: 'text', text: 'a' }], [{ type: 'strong', children: [{ type: 'text', text: 'b' }] }]] });
    expect(blocks[3]).toMatchObject({ type: 'list', ordered: true });
  });

  it('keeps fenced code verbatim, including an unclosed fence while streaming', () => {
    expect(parseMarkdown('```js\nconst a = "<b>";\n```\nafter')).toEqual([
      { type: 'code', lang: 'js', text: 'const a = "<b>";' },
      { type: 'paragraph', lines: [[{ type: 'text', text: 'after' }]] },
    ]);
    expect(parseMarkdown('```\npartial **not bold**')).toEqual([{ type: 'code', lang: '', text: 'partial **not bold**' }]);
  });
});

describe('parseInline', () => {
  it('parses code, strong, em and nested spans', () => {
    expect(parseInline('a `x*y` **b *c* e** _d_')).toEqual([
      { type: 'text', text: 'a ' },
      { type: 'code', text: 'x*y' },
      { type: 'text', text: ' ' },
      { type: 'strong', children: [{ type: 'text', text: 'b ' }, { type: 'em', children: [{ type: 'text', text: 'c' }] }, { type: 'text', text: ' e' }] },
      { type: 'text', text: ' ' },
      { type: 'em', children: [{ type: 'text', text: 'd' }] },
    ]);
  });

  it('leaves snake_case words and lone asterisks alone', () => {
    expect(parseInline('snake_case_name 2 * 3 = 6')).toEqual([{ type: 'text', text: 'snake_case_name 2 * 3 = 6' }]);
  });

  it('links only to http(s) and mailto; anything else stays text', () => {
    expect(parseInline('[site](https://example.com/a?b=1)')).toEqual([
      { type: 'link', href: 'https://example.com/a?b=1', children: [{ type: 'text', text: 'site' }] },
    ]);
    expect(parseInline('[x](javascript:alert(1))')).toEqual([{ type: 'text', text: '[x](javascript:alert(1)' }, { type: 'text', text: ')' }]);
    expect(safeHref('data:text/html,<b>')).toBeNull();
    expect(safeHref('/relative')).toBeNull();
    expect(safeHref('mailto:a@b.c')).toBe('mailto:a@b.c');
  });
});

describe('underscores inside words', () => {
  it('do not open emphasis (identifiers in code-like text stay intact)', () => {
    const text = `window.__xss='img';document.title='x' and window.__xss='y'`;
    expect(parseInline(text)).toEqual([{ type: 'text', text }]);
    expect(parseInline('__strong__ here')).toEqual([{ type: 'strong', children: [{ type: 'text', text: 'strong' }] }, { type: 'text', text: ' here' }]);
  });
});
