/**
 * Protected tokens of chat prompts (src/engine/prompt-structure.ts) with the real tokenizers: the ChatML
 * template of byte-llama-12l and the plain fallback of stories260k (no template).
 */
import { describe, expect, it } from 'vitest';
import { PromptStructure } from '../../src/engine/prompt-structure';
import { loadTokenizer, type ChatTokenizer } from '../../src/model/tokenizer';
import type { ChatMessage } from '../../src/worker/api';
import { DirSource } from '../helpers/dir-source';
import { sharedModel } from '../helpers/hub';

/** The decoded text of the ids inside and outside `ranges`. */
function split(tok: ChatTokenizer, ids: number[], ranges: Array<[number, number]>): { kept: string; free: string } {
  const inside = (i: number) => ranges.some(([a, b]) => i >= a && i < b);
  return { kept: tok.decode(ids.filter((_, i) => inside(i))), free: tok.decode(ids.filter((_, i) => !inside(i))) };
}

const chat: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi there' },
  { role: 'assistant', content: 'Hello! How can I help?' },
  { role: 'user', content: 'Tell me a story' },
];

describe('protected ranges of chat prompts', () => {
  it('ChatML: the system prompt and every <|im_start|>role … <|im_end|> marker, not the other contents', async () => {
    const tok = await loadTokenizer(new DirSource(sharedModel('byte-llama-12l')), [256]);
    const ids = tok.encodeChat(chat);
    const ranges = new PromptStructure(tok).protectedRanges(chat, ids);
    const { kept, free } = split(tok, ids, ranges);
    expect(free).toBe('Hi thereHello! How can I help?Tell me a story');
    expect(kept).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n');
    expect(ranges[ranges.length - 1][1]).toBe(ids.length);
  });

  it('plain fallback: "System: …" and the role labels', async () => {
    const tok = await loadTokenizer(new DirSource(sharedModel('stories260k')));
    const ids = tok.encodeChat(chat);
    const structure = new PromptStructure(tok);
    const ranges = structure.protectedRanges(chat, ids);
    const { kept, free } = split(tok, ids, ranges);
    for (const c of ['Hi there', 'Hello! How can I help?', 'Tell me a story']) expect(free).toContain(c);
    expect(kept).toContain('System: Be brief.');
    expect(kept).toContain('Assistant:');
    expect(kept).not.toContain('story');
    // Asked again (the next turn), the memoized prefixes give the same answer.
    expect(structure.protectedRanges(chat, ids)).toEqual(ranges);
  });

  it('a template that rewrites a content stops the structure at that message, keeping what it found', async () => {
    const tok = await loadTokenizer(new DirSource(sharedModel('byte-llama-12l')), [256]);
    const shouting: Pick<ChatTokenizer, 'renderChat' | 'encodeRendered'> = {
      renderChat: (m, gen) => tok.renderChat(m.map((x) => (x.role === 'user' ? { ...x, content: x.content.toUpperCase() } : x)), gen),
      encodeRendered: (t) => tok.encodeRendered(t),
    };
    const ids = tok.encodeRendered(shouting.renderChat(chat, true));
    const ranges = new PromptStructure(shouting).protectedRanges(chat, ids);
    expect(split(tok, ids, ranges).kept).toBe('<|im_start|>system\nBe brief.');
  });
});
