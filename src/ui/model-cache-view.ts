/**
 * The cached-models list (size stored / total, complete or partial, Load or Resume, Delete) and the
 * storage line from navigator.storage.estimate(). Reads IndexedDB metadata only; chunk writes happen in
 * the engine worker.
 */
import type { ModelSourceSpec } from '../model/source';
import type { CachedModelSummary } from '../storage/weight-cache';
import { deleteCachedModel, listCachedModels, storageEstimate } from '../storage/weight-cache';
import { el } from './dom';
import { formatSize } from './load-progress';

/** What the cache list asks its owner to do. */
export interface CacheListActions {
  load(spec: ModelSourceSpec, modelId: string): void;
  /** Report a failure (e.g. IndexedDB refused a delete). */
  fail(err: unknown): void;
  /** The access token to resume a gated download with. */
  token(): string | undefined;
}

/** The spec that loads (or resumes) a cached model. */
export function specForCached(m: CachedModelSummary, token?: string): ModelSourceSpec {
  const file = m.origin.file ? { file: m.origin.file } : {};
  if (m.origin.kind === 'hub') return { kind: 'hub', repo: m.origin.repo, baseUrl: m.origin.baseUrl, revision: m.origin.revision, cache: true, token, ...file };
  return { kind: 'cache', key: m.key, ...file };
}

/** The list and the storage line, with a refresh(). */
export function renderCacheList(actions: CacheListActions) {
  const list = el('ul', { id: 'cache-list', className: 'mm-cache-list' });
  const estimate = el('p', { id: 'storage-estimate', className: 'mm-hint' });
  let busy = false;

  const item = (m: CachedModelSummary) => {
    const where = m.origin.kind === 'hub' ? new URL(m.origin.baseUrl).host : m.origin.file ? 'imported file' : 'imported folder';
    const pct = m.totalBytes > 0 ? Math.floor((m.storedBytes / m.totalBytes) * 100) : 0;
    const status = m.complete ? 'complete, loads offline' : `partial (${pct}% of the files begun)`;
    const load = el('button', { type: 'button', className: 'mm-button', textContent: m.complete ? 'Load' : m.origin.kind === 'hub' ? 'Resume' : 'Load', disabled: busy });
    load.classList.add('mm-cache-load');
    load.addEventListener('click', () => actions.load(specForCached(m, actions.token()), m.label));
    const remove = el('button', { type: 'button', className: 'mm-button mm-danger', textContent: 'Delete', disabled: busy, title: `Delete the cached copy of ${m.label}` });
    remove.classList.add('mm-cache-delete');
    remove.addEventListener('click', async () => {
      remove.disabled = load.disabled = true;
      try {
        await deleteCachedModel(m.key);
      } catch (err) {
        actions.fail(err);
      }
      await refresh();
    });
    return el(
      'li',
      { className: `mm-cache-item${m.complete ? '' : ' partial'}`, dataset: { key: m.key, complete: String(m.complete) } },
      el('div', { className: 'mm-cache-name' }, el('strong', {}, m.label), el('small', {}, ` ${where}`)),
      el('div', { className: 'mm-cache-size' }, `${formatSize(m.storedBytes)}${m.complete ? '' : ` of ${formatSize(m.totalBytes)}`} · ${status}`),
      el('div', { className: 'mm-cache-actions' }, load, remove),
    );
  };

  async function refresh(): Promise<void> {
    let models: CachedModelSummary[] = [];
    try {
      models = await listCachedModels();
    } catch (err) {
      list.replaceChildren(el('li', { className: 'mm-hint' }, `The model cache cannot be read (${(err as Error).message}). Site storage may be off in this window.`));
      return;
    }
    list.replaceChildren(...(models.length ? models.map(item) : [el('li', { className: 'mm-hint' }, 'No models cached yet. Downloaded and imported models appear here and load offline.')]));
    const cachedBytes = models.reduce((s, m) => s + m.storedBytes, 0);
    const e = await storageEstimate().catch(() => null);
    estimate.textContent = e
      ? `Models: ${formatSize(cachedBytes)}. Site storage: ${formatSize(e.usage)} used of ${formatSize(e.quota)} available${e.persisted ? ', persistent' : ' (the browser may evict it when disk space runs low)'}.`
      : `Models: ${formatSize(cachedBytes)}. This browser does not report its storage quota.`;
  }

  return {
    list,
    estimate,
    refresh,
    setBusy(b: boolean) {
      busy = b;
      for (const button of list.querySelectorAll('button')) button.disabled = b;
    },
  };
}
