/**
 * The curated model cards: name, gated badge, download size (exact once the hub answers, else computed
 * from the config), weight memory and KV memory at 4K context for each compression mode, and a Load button.
 */
import { el } from './dom';
import { formatCount, formatSize } from './load-progress';
import { estimateEntry, MODEL_CATALOG, probeDownloadBytes, type CatalogEntry } from './model-catalog';

/** Render the catalog into a list; `onLoad` runs when a card's button is pressed. */
export function renderCatalog(onLoad: (entry: CatalogEntry) => void): { element: HTMLElement; probeSizes(hubUrl: string): void; setBusy(busy: boolean): void } {
  const buttons: HTMLButtonElement[] = [];
  const sizeCells = new Map<string, HTMLElement>();
  const cards = MODEL_CATALOG.map((entry) => {
    const e = estimateEntry(entry);
    const button = el('button', { type: 'button', className: 'mm-button', textContent: 'Download & load', dataset: { repo: entry.repo } });
    button.addEventListener('click', () => onLoad(entry));
    buttons.push(button);
    const size = el('span', { textContent: `≈ ${formatSize(e.downloadBytesEstimate)}`, title: 'Computed from the config (bf16 safetensors) until the hub reports the real size' });
    sizeCells.set(entry.repo, size);
    const kvTitle = e.kvTokens < 4096 ? `KV at ${e.kvTokens.toLocaleString('en-US')} tokens (its full context)` : 'KV at 4K tokens';
    return el(
      'li',
      { className: 'mm-card', dataset: { repo: entry.repo } },
      el('div', { className: 'mm-card-head' }, el('strong', {}, entry.name), entry.gated ? el('span', { className: 'mm-badge', textContent: 'gated' }) : '', button),
      el('div', { className: 'mm-card-id' }, entry.repo),
      el('p', { className: 'mm-blurb' }, entry.blurb),
      el(
        'p',
        { className: 'mm-facts' },
        el('span', {}, 'Download ', size),
        el('span', {}, `Weights ${formatSize(e.weightBytesF16)} (f16), ${formatCount(e.params)} params`),
        el('span', {}, `${e.config.architecture}, ${e.config.numLayers} layers, ${e.config.numKvHeads}×${e.config.headDim} KV heads, ${(e.config.maxPositions / 1024).toFixed(0)}K context`),
      ),
      el(
        'table',
        { className: 'mm-kv' },
        el('caption', {}, `${kvTitle}, f16 parts`),
        el('tbody', {}, ...e.kv.map((k) => el('tr', {}, el('th', { scope: 'row' }, k.label), el('td', {}, formatSize(k.bytes))))),
      ),
    );
  });
  const element = el('ul', { className: 'mm-catalog', id: 'model-catalog' }, ...cards);
  let probedFor = '';
  return {
    element,
    probeSizes(hubUrl: string) {
      if (hubUrl === probedFor) return;
      probedFor = hubUrl;
      for (const entry of MODEL_CATALOG) {
        void probeDownloadBytes(hubUrl, entry.repo).then((bytes) => {
          const cell = sizeCells.get(entry.repo);
          if (bytes === null || !cell || probedFor !== hubUrl) return;
          cell.textContent = formatSize(bytes);
          cell.title = `Size of the weights on ${hubUrl}`;
        });
      }
    },
    setBusy(busy: boolean) {
      for (const b of buttons) b.disabled = busy;
    },
  };
}
