/**
 * Generation settings: system prompt, prompt format, output rendering, and sampling (the model's recommended
 * sampling or custom temperature, top-p, top-k; max tokens, seed), each with a one-line explanation. Edits the
 * shared AppSettings in place. While the model's sampling is in use, its inputs show the values in effect
 * (dimmed, still editable: editing one switches to custom values, starting from those shown).
 */
import type { GenerationDefaults } from '../../worker/api';
import { el, field } from '../dom';
import { samplingInEffect, type AppSettings, type SamplingInEffect } from './settings-store';

/** What the panel lets the app do after mounting. */
export interface GenerationPanel {
  /** Show the loaded model's generation defaults (null: none loaded) as the values in effect. */
  setModelDefaults(defaults: GenerationDefaults | null): void;
}

/** Where the values in effect came from, in words; `loaded`: a model is loaded. */
function sourceText(e: SamplingInEffect, loaded: boolean): string {
  const penalty = e.repetitionPenalty !== 1 ? `repetition penalty ${e.repetitionPenalty}` : '';
  if (e.source === 'custom') return `Your own values below${penalty ? ` (the model's ${penalty} still applies)` : ''}; edits are kept.`;
  if (!loaded) return "The loaded model's recommended values show here; greedy until a model is loaded. Editing a value switches to your own.";
  if (e.source === 'engine') return "The model has no generation_config.json: greedy, the engine's default. Editing a value switches to your own.";
  const values = e.temperature === 0 ? 'greedy' : `temperature ${e.temperature}, top-p ${e.topP}, top-k ${e.topK}`;
  return `In effect, from the model's generation_config.json: ${values}${penalty ? `, ${penalty}` : ''}. Editing a value switches to your own.`;
}

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
export function mountGenerationPanel(container: HTMLElement, settings: AppSettings, onChange: () => void): GenerationPanel {
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
  const useModel = el('input', { id: 'sampling-model-defaults', type: 'checkbox', checked: s.useModelDefaults });
  const source = el('small', { id: 'sampling-source', className: 'hint' });
  const sampled = [temperature, topP, topK];
  let modelDefaults: GenerationDefaults | null = null;

  /** Show the values in effect: the model's (dimmed) or the user's own. */
  const show = () => {
    const e = samplingInEffect(s, modelDefaults);
    temperature.value = String(e.temperature);
    topP.value = String(e.topP);
    topK.value = String(e.topK);
    for (const input of sampled) {
      input.style.opacity = s.useModelDefaults ? '0.6' : '';
      input.title = s.useModelDefaults ? "The model's value; edit it to use your own." : '';
    }
    source.textContent = sourceText(e, modelDefaults !== null);
  };
  const read = () => {
    settings.systemPrompt = system.value;
    settings.promptFormat = format.value as AppSettings['promptFormat'];
    settings.outputFormat = output.value as AppSettings['outputFormat'];
    if (!s.useModelDefaults) {
      s.temperature = readNumber(temperature, 0);
      s.topP = readNumber(topP, 1);
      s.topK = readNumber(topK, 0, true);
    }
    s.maxTokens = readNumber(maxTokens, 256, true);
    s.seed = seed.value.trim() === '' ? null : readNumber(seed, 0, true);
    show();
    onChange();
  };
  for (const input of [system, format, output, maxTokens, seed]) input.addEventListener('change', read);
  // Editing a value the model set means the user wants their own: custom, from what the inputs show.
  for (const input of sampled) {
    input.addEventListener('change', () => {
      s.useModelDefaults = false;
      useModel.checked = false;
      read();
    });
  }
  const modelRow = el('div', { className: 'field' }, el('label', { className: 'check' }, useModel, " Use the model's recommended sampling (generation_config.json)"), source);
  modelRow.style.gridColumn = '1 / -1';
  useModel.addEventListener('change', () => {
    s.useModelDefaults = useModel.checked;
    show();
    onChange();
  });
  show();

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
      modelRow,
      field('Temperature', temperature, '0 = greedy (always the likeliest token); higher = more varied.'),
      field('Top-p', topP, 'Sample from the smallest set of tokens with this total probability (1 = off).'),
      field('Top-k', topK, 'Sample from the k likeliest tokens only (0 = off).'),
      field('Max tokens', maxTokens, 'Longest reply, in tokens.'),
      field('Seed', seed, 'Fixed seed = repeatable sampling; empty = a new random seed each reply.'),
    ),
  );
  return {
    setModelDefaults(defaults) {
      modelDefaults = defaults;
      show();
    },
  };
}
