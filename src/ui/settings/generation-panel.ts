/**
 * Generation settings: system prompt, prompt format, output rendering, and sampling (temperature, top-p,
 * top-k, max tokens, seed), each with a one-line explanation. Edits the shared AppSettings in place.
 */
import { el, field } from '../dom';
import type { AppSettings } from './settings-store';

function numberInput(id: string, value: number | null, min: number, max: number, step: number, placeholder = ''): HTMLInputElement {
  return el('input', { id, type: 'number', min: String(min), max: String(max), step: String(step), value: value === null ? '' : String(value), placeholder });
}

/** Parse a number input, clamped to its bounds; `fallback` when empty or invalid. */
function readNumber(input: HTMLInputElement, fallback: number, integer = false): number {
  const v = Number(input.value);
  if (input.value.trim() === '' || !Number.isFinite(v)) return fallback;
  const clamped = Math.min(Number(input.max), Math.max(Number(input.min), v));
  return integer ? Math.round(clamped) : clamped;
}

/** Mount the panel; `onChange` runs after every edit. */
export function mountGenerationPanel(container: HTMLElement, settings: AppSettings, onChange: () => void): void {
  const s = settings.sampling;
  const system = el('textarea', { id: 'system-prompt', rows: 3, value: settings.systemPrompt, placeholder: 'e.g. You are a concise assistant.' });
  const format = el(
    'select',
    { id: 'prompt-format' },
    el('option', { value: 'auto', textContent: 'Auto (chat template if the model has one)' }),
    el('option', { value: 'chat', textContent: 'Chat template' }),
    el('option', { value: 'completion', textContent: 'Plain text continuation' }),
  );
  format.value = settings.promptFormat;
  const output = el('select', { id: 'output-format' }, el('option', { value: 'markdown', textContent: 'Markdown (sanitized)' }), el('option', { value: 'text', textContent: 'Plain text' }));
  output.value = settings.outputFormat;
  const temperature = numberInput('temperature', s.temperature, 0, 2, 0.05);
  const topP = numberInput('top-p', s.topP, 0.01, 1, 0.01);
  const topK = numberInput('top-k', s.topK, 0, 1000, 1);
  const maxTokens = numberInput('max-tokens', s.maxTokens, 1, 8192, 1);
  const seed = numberInput('seed', s.seed, 0, 4294967295, 1, 'random');

  const read = () => {
    settings.systemPrompt = system.value;
    settings.promptFormat = format.value as AppSettings['promptFormat'];
    settings.outputFormat = output.value as AppSettings['outputFormat'];
    s.temperature = readNumber(temperature, 0);
    s.topP = readNumber(topP, 1);
    s.topK = readNumber(topK, 0, true);
    s.maxTokens = readNumber(maxTokens, 256, true);
    s.seed = seed.value.trim() === '' ? null : readNumber(seed, 0, true);
    onChange();
  };
  for (const input of [system, format, output, temperature, topP, topK, maxTokens, seed]) input.addEventListener('change', read);

  container.append(
    el(
      'fieldset',
      { className: 'settings-group' },
      el('legend', {}, 'Conversation'),
      field('System prompt', system, 'Sent first with every chat-template prompt; ignored by plain continuation.'),
      field('Prompt format', format, 'Base models without a chat template continue your text instead of chatting.'),
      field('Render replies as', output, 'Markdown is built as DOM nodes; HTML in a reply is always shown as text.'),
    ),
    el(
      'fieldset',
      { className: 'settings-group sampling' },
      el('legend', {}, 'Sampling'),
      field('Temperature', temperature, '0 = greedy (always the likeliest token); higher = more varied.'),
      field('Top-p', topP, 'Sample from the smallest set of tokens with this total probability (1 = off).'),
      field('Top-k', topK, 'Sample from the k likeliest tokens only (0 = off).'),
      field('Max tokens', maxTokens, 'Longest reply, in tokens.'),
      field('Seed', seed, 'Fixed seed = repeatable sampling; empty = a new random seed each reply.'),
    ),
  );
}
