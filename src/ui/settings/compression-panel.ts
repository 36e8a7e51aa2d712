/**
 * Compression settings: the KV mode (full, int8, kivi, zip, merge, merge+kivi) with its parameters (the
 * quantized modes' Hadamard rotation a checkbox), each with a one-line explanation, and the memory budget
 * (MiB) with its "auto" escalation switch.
 * Edits the shared AppSettings in place; the app applies changes to the engine (mid-chat included).
 */
import { el, field } from '../dom';
import { KV_MODES, MODE_INFO, PARAM_INFO, type KvModeChoice, type KvSettings, type ParamName } from './kv-modes';
import type { AppSettings } from './settings-store';

const PARAM_IDS: Record<ParamName, string> = {
  bits: 'kv-bits',
  groupSize: 'kv-group',
  residual: 'kv-residual',
  startLayer: 'kv-start-layer',
  t: 'kv-t',
  retention: 'kv-retention',
  salientFraction: 'kv-salient',
  rotate: 'kv-rotate',
};

/** Hooks the app gives the panel. */
export interface CompressionHooks {
  /** The mode or one of its parameters changed. */
  onKvChange(kv: KvSettings): void;
  /** The budget or its switches changed. */
  onBudgetChange(): void;
}

/** What the app can do to the mounted panel. */
export interface CompressionPanel {
  /** Show another mode (e.g. after an auto escalation). */
  showKv(kv: KvSettings): void;
  /** A status line under the modes: what was applied, or why it failed. */
  setStatus(text: string, level?: 'info' | 'error'): void;
  /** The loaded model's layer count (bounds the merge start layer). */
  setLayerCount(layers: number): void;
}

/** Mount the panel. */
export function mountCompressionPanel(container: HTMLElement, settings: AppSettings, hooks: CompressionHooks): CompressionPanel {
  let layerCount = 0;
  const modeList = el('div', { className: 'mode-list', role: 'radiogroup', ariaLabel: 'KV cache mode' });
  const radios = new Map<KvModeChoice, HTMLInputElement>();
  for (const mode of KV_MODES) {
    const radio = el('input', { type: 'radio', name: 'kv-mode', id: `kv-mode-${mode.replace('+', '-')}`, value: mode });
    radios.set(mode, radio);
    modeList.append(
      el('label', { className: 'mode-option' }, radio, el('span', { className: 'mode-name' }, MODE_INFO[mode].label), el('small', { className: 'hint' }, MODE_INFO[mode].explain)),
    );
    radio.addEventListener('change', () => {
      if (!radio.checked) return;
      settings.kv.mode = mode;
      renderParams();
      hooks.onKvChange(settings.kv);
    });
  }
  const params = el('div', { id: 'kv-params', className: 'kv-params' });
  const status = el('p', { id: 'kv-status', className: 'kv-status', role: 'status' });

  const renderParams = () => {
    const mode = settings.kv.mode;
    const values = settings.kv.params[mode];
    const names = MODE_INFO[mode].params;
    params.replaceChildren();
    if (!names.length) params.append(el('p', { className: 'hint' }, 'No parameters.'));
    for (const name of names) {
      const info = PARAM_INFO[name];
      const current = values[name];
      if (info.kind === 'check') {
        const box = el('input', { id: PARAM_IDS[name], type: 'checkbox', checked: Boolean(current) });
        box.addEventListener('change', () => {
          (values as Record<string, boolean>)[name] = box.checked;
          hooks.onKvChange(settings.kv);
        });
        params.append(el('div', { className: 'field' }, el('label', { className: 'check' }, box, ` ${info.label}`), el('small', { className: 'hint' }, info.explain)));
        continue;
      }
      let input: HTMLInputElement | HTMLSelectElement;
      if (info.kind === 'select') {
        input = el('select', { id: PARAM_IDS[name] }, ...(info.options ?? []).map((o) => el('option', { value: String(o), textContent: String(o) })));
        input.value = String(current ?? info.options?.[0]);
      } else {
        const max = name === 'startLayer' && layerCount > 0 ? layerCount - 1 : info.max;
        input = el('input', { id: PARAM_IDS[name], type: 'number', min: String(info.min), max: String(max), step: String(info.step), value: current === null || current === undefined ? '' : String(current) });
        if (name === 'startLayer') input.placeholder = layerCount ? `default ${Math.floor(layerCount / 2)}` : 'half the layers';
      }
      input.addEventListener('change', () => {
        const raw = input.value.trim();
        const num = Number(raw);
        if (name === 'startLayer' && raw === '') values.startLayer = null;
        else if (raw !== '' && Number.isFinite(num)) (values as Record<string, number>)[name] = num;
        hooks.onKvChange(settings.kv);
      });
      params.append(field(info.label, input, info.explain));
    }
  };

  const budget = settings.budget;
  const enabled = el('input', { id: 'budget-enabled', type: 'checkbox', checked: budget.enabled });
  const mib = el('input', { id: 'budget-mib', type: 'number', min: '0.01', step: '0.05', value: String(budget.mib) });
  const auto = el('input', { id: 'budget-auto', type: 'checkbox', checked: budget.auto });
  const eviction = el(
    'select',
    { id: 'budget-eviction' },
    el('option', { value: 'window', textContent: 'Window: sinks + most recent' }),
    el('option', { value: 'saliency', textContent: 'Saliency: most attended + recent (H2O)' }),
  );
  eviction.value = budget.eviction;
  const onBudget = () => {
    budget.enabled = enabled.checked;
    const v = Number(mib.value);
    if (Number.isFinite(v) && v > 0) budget.mib = v;
    budget.auto = auto.checked;
    budget.eviction = eviction.value === 'saliency' ? 'saliency' : 'window';
    mib.disabled = auto.disabled = eviction.disabled = !budget.enabled;
    hooks.onBudgetChange();
  };
  for (const input of [enabled, mib, auto, eviction]) input.addEventListener('change', onBudget);
  mib.disabled = auto.disabled = eviction.disabled = !budget.enabled;

  container.append(
    el('fieldset', { className: 'settings-group' }, el('legend', {}, 'KV cache mode'), modeList, params, status),
    el(
      'fieldset',
      { className: 'settings-group' },
      el('legend', {}, 'Memory budget'),
      el('label', { className: 'check' }, enabled, ' Limit the KV cache to a budget'),
      field('Budget (MiB)', mib, 'Bytes the KV cache may allocate, checked before every step.'),
      el('label', { className: 'check' }, auto, ' Auto: move to a stronger mode first'),
      field('When the cache is full, keep', eviction, 'Which tokens stay when the cache evicts; the system prompt and role markers always do.'),
      el(
        'small',
        { className: 'hint' },
        'Over budget, the chat first escalates full → int8 → kivi-4 → zip → kivi-2 → merge+kivi with your G and R (if auto), then evicts tokens ' +
          'in place (full, int8, kivi, zip; merged modes re-read what they keep), keeping the first 4 tokens (attention sinks), the system prompt ' +
          'and role markers. The transcript keeps everything; the chat says when this happens.',
      ),
    ),
  );

  const showKv = (kv: KvSettings) => {
    settings.kv = kv;
    (radios.get(kv.mode) as HTMLInputElement).checked = true;
    renderParams();
  };
  showKv(settings.kv);

  return {
    showKv,
    setStatus(text, level = 'info') {
      status.textContent = text;
      status.dataset.level = level;
    },
    setLayerCount(layers) {
      layerCount = layers;
      renderParams();
    },
  };
}
