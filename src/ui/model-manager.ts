/**
 * The model manager panel: the one-button offline demo, the curated list, any hub id (its config is
 * validated before a byte of weights moves), local folder import, a progress bar with bytes, percent, speed
 * and time left, the IndexedDB cache list and the storage estimate. Every load goes through the engine
 * worker's `load(spec)`, the same code for every source; downloads and chunk writes happen in the worker.
 */
import type { ModelSourceSpec } from '../model/source';
import { hubCacheKey, importCacheKey } from '../model/source';
import { deleteCachedModel } from '../storage/weight-cache';
import type { LoadOptions, LoadProgress, ModelInfo, WeightChoice } from '../worker/api';
import type { KvtabEngine } from '../lib/engine';
import { el, errorText, field } from './dom';
import { formatCount, formatSize, LoadProgressTracker } from './load-progress';
import { renderCacheList } from './model-cache-view';
import { estimateModel } from './model-catalog';
import { renderCatalog } from './model-catalog-view';
import { checkGgufFile, ggufFilesOf, listHubFiles, renderGgufPicker } from './gguf-files';
import { createHubSettings } from './hub-settings';
import { checkModelFolder, fetchHubConfig, parseModelRef } from './model-validate';
import { TabLock, tabNotice } from './tab-lock';
import './model-manager.css';

/** A model the engine has loaded. */
export interface LoadedModel {
  modelId: string;
  /** How to load it again (never holds an access token or File objects). */
  source: ModelSourceSpec;
  info: ModelInfo;
}

/** What the app shell provides. */
export interface ModelManagerHooks {
  loadOptions(): LoadOptions;
  /** The saved weight storage choice and memory limit (MiB, null: none), and where a change goes. */
  weightChoice?(): WeightChoice;
  weightLimitMiB?(): number | null;
  onWeightChoice?(choice: WeightChoice, limitMiB: number | null): void;
  onLoaded(model: LoadedModel): void;
  onError(message: string): void;
  onBusy?(busy: boolean): void;
  /** The user cancelled a load (no error to show; the previous model may be gone). */
  onCancelled?(): void;
}

/** What the app shell gets back. */
export interface ModelManager {
  element: HTMLElement;
  /** Load the stories260k demo the app ships under public/ (no network beyond this page's origin). */
  loadDemo(): Promise<void>;
  /** Load any source spec (e.g. a LoadedModel.source saved before a reload). Resolves false when it failed (the panel shows why). */
  load(spec: ModelSourceSpec, modelId: string): Promise<boolean>;
}

/** Where the demo model lives, relative to the page, and its files (public/models/stories260k/). */
const DEMO_PATH = 'models/stories260k/';
const DEMO_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'];

/** Mount the panel into `container`. */
export function mountModelManager(container: HTMLElement, engine: KvtabEngine, hooks: ModelManagerHooks): ModelManager {
  const query = new URLSearchParams(location.search);
  const hub = createHubSettings();
  const modelId = el('input', { id: 'model-id-input', placeholder: 'org/name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct', spellcheck: false, value: query.get('model') ?? '' });
  const modelIdLoad = el('button', { id: 'model-id-load', type: 'submit', className: 'mm-button', textContent: 'Check & load' });
  const modelIdInfo = el('p', { id: 'model-id-info', className: 'mm-hint' });
  const demo = el('button', { id: 'demo-load', type: 'button', className: 'mm-button mm-primary', textContent: 'Run the offline demo' });
  const folder = el('input', { id: 'import-folder', type: 'file', multiple: true, className: 'mm-file' });
  folder.setAttribute('webkitdirectory', '');
  const folderLabel = el('label', { className: 'mm-button', htmlFor: 'import-folder', textContent: 'Import a local folder…' });
  const ggufInput = el('input', { id: 'import-gguf', type: 'file', accept: '.gguf', className: 'mm-file' });
  const ggufLabel = el('label', { className: 'mm-button', htmlFor: 'import-gguf', textContent: 'Import a .gguf file…' });
  const ggufList = el('div', { id: 'gguf-picker', className: 'mm-gguf-picker' });
  const weightSelect = el(
    'select',
    { id: 'weight-dtype' },
    ...([['auto', 'auto (f16 where the adapter has it, else f32)'], ['f16', 'f16'], ['f32', 'f32'], ['q8', 'q8: Q8_0 blocks, ≈ 0.53× f16'], ['q4', 'q4: Q4_K_M-style mix (Q4_K / Q4_0, output and some v/down Q6_K / Q5_0), ≈ 0.31× f16']] as const).map(([value, text]) =>
      el('option', { value, textContent: text }),
    ),
  );
  weightSelect.value = hooks.weightChoice?.() ?? 'auto';
  const weightLimit = el('input', { id: 'weight-limit', type: 'number', min: '0', step: '1', placeholder: 'no limit', value: String(hooks.weightLimitMiB?.() ?? '') });
  const storageChanged = () => hooks.onWeightChoice?.(weightSelect.value as WeightChoice, Number(weightLimit.value) > 0 ? Number(weightLimit.value) : null);
  weightSelect.addEventListener('change', storageChanged);
  weightLimit.addEventListener('change', storageChanged);
  const progress = el('progress', { id: 'load-progress', max: 1, value: 0 });
  const progressText = el('div', { id: 'load-progress-text', className: 'mm-progress-text', textContent: 'No model loaded.' });
  progressText.setAttribute('aria-live', 'polite');
  const cancel = el('button', { id: 'load-cancel', type: 'button', className: 'mm-button mm-quiet', textContent: 'Cancel', hidden: true });
  cancel.addEventListener('click', () => {
    cancel.disabled = true;
    progressText.textContent = 'Cancelling…';
    void engine.cancelLoad().catch(() => {});
  });
  const storageNotice = el('p', { id: 'model-storage-notice', className: 'mm-warning', role: 'status', hidden: true });
  const tabs = new TabLock();
  const otherTab = tabNotice();
  const errorMessage = el('p', { className: 'mm-error-text' });
  const errorAction = el('button', { id: 'model-error-action', type: 'button', className: 'mm-button', hidden: true });
  const errorClose = el('button', { type: 'button', className: 'mm-button mm-quiet', textContent: 'Dismiss' });
  const errorBox = el('div', { id: 'model-error', className: 'mm-error', role: 'alert', hidden: true }, errorMessage, el('div', { className: 'mm-row' }, errorAction, errorClose));

  let busy = false;
  const tokenValue = hub.token;
  const cache = renderCacheList({ load: (spec, id) => void load(spec, id), fail: showError, token: tokenValue });
  const catalog = renderCatalog((entry) => void loadHubModel(entry.repo));

  const element = el(
    'section',
    { className: 'model-manager', id: 'model-manager' },
    el(
      'div',
      { className: 'mm-demo' },
      demo,
      el('span', { className: 'mm-hint' }, 'stories260k, 1.1 MB, ships with the app: no download, no network. A tiny story model, not a chat model.'),
    ),
    el('div', { className: 'mm-progress' }, el('div', { className: 'mm-row' }, progress, cancel), progressText),
    errorBox,
    otherTab.element,
    storageNotice,
    hub.notices,
    el('div', { className: 'mm-cache' }, el('h3', {}, 'Cached models'), cache.list, cache.estimate),
    el('h3', {}, 'Models'),
    catalog.element,
    el(
      'form',
      { className: 'mm-any', onsubmit: (ev: SubmitEvent) => { ev.preventDefault(); void loadHubModel(modelId.value); } },
      el('h3', {}, 'Any Hugging Face model'),
      el('div', { className: 'mm-row' }, field('Model id', modelId), modelIdLoad),
      modelIdInfo,
      ggufList,
      el('details', {}, el('summary', {}, 'Hub settings'), hub.fields),
    ),
    el(
      'div',
      { className: 'mm-import' },
      el('h3', {}, 'Local files'),
      el('div', { className: 'mm-row' }, folderLabel, folder, ggufLabel, ggufInput),
      el('p', { className: 'mm-hint' }, 'A folder with config.json, tokenizer.json and *.safetensors, or one .gguf file. It is copied into the cache, so it loads after a reload too.'),
    ),
    el(
      'div',
      { className: 'mm-weights' },
      el('h3', {}, 'Weights on the GPU'),
      field('Weight storage', weightSelect, 'For safetensors and for the float tensors of GGUF files; quantized GGUF tensors load as they are. Applies to the next load.'),
      field('GPU memory for weights (MiB)', weightLimit, 'With "auto", weights larger than this are quantized on load (q8, else q4) and you are told so.'),
    ),
  );
  container.append(element);

  function setBusy(b: boolean): void {
    busy = b;
    for (const button of [demo, modelIdLoad]) button.disabled = b;
    folder.disabled = ggufInput.disabled = b;
    folderLabel.classList.toggle('disabled', b);
    ggufLabel.classList.toggle('disabled', b);
    for (const button of ggufList.querySelectorAll('button')) button.disabled = b;
    catalog.setBusy(b);
    cache.setBusy(b);
    hooks.onBusy?.(b);
  }

  function clearError(): void {
    errorBox.hidden = true;
    errorAction.hidden = true;
    errorAction.onclick = null;
  }

  function showError(err: unknown, action?: { label: string; run: () => void }): void {
    const text = errorText(err);
    errorMessage.textContent = text;
    errorBox.hidden = false;
    errorBox.dataset.errorName = (err as { name?: string })?.name ?? 'Error';
    if (action) {
      errorAction.textContent = action.label;
      errorAction.hidden = false;
      errorAction.onclick = () => {
        clearError();
        action.run();
      };
    }
    errorBox.scrollIntoView({ block: 'nearest' }); // the button pressed may be far below the message
    hooks.onError(text);
  }
  errorClose.addEventListener('click', clearError);

  /** The cache key a spec reads through, for "delete and download again". */
  function cacheKeyOf(spec: ModelSourceSpec): string | null {
    if (spec.kind === 'hub' && spec.cache) return hubCacheKey(spec.repo, spec.baseUrl, spec.revision, spec.file);
    if (spec.kind === 'files') return importCacheKey(spec.name, spec.files);
    if (spec.kind === 'cache') return spec.key;
    return null;
  }

  /** What to offer after a failed load. */
  function recovery(err: unknown, spec: ModelSourceSpec, id: string): { label: string; run: () => void } | undefined {
    const name = (err as { name?: string })?.name;
    const key = cacheKeyOf(spec);
    if (name === 'CacheCorruptError' && key) {
      const canRefetch = spec.kind === 'hub' || spec.kind === 'files';
      return {
        label: canRefetch ? 'Delete the cached copy and download again' : 'Delete the cached copy',
        run: () =>
          void deleteCachedModel(key)
            .then(async () => {
              if (canRefetch) await load(spec, id);
              else await cache.refresh();
            })
            .catch((e) => showError(e)),
      };
    }
    if (name === 'DownloadInterruptedError') return { label: 'Resume the download', run: () => void load(spec, id) };
    return undefined;
  }

  /** Load a spec; `anyway`: the user chose to load although another tab holds the engine. */
  async function load(spec: ModelSourceSpec, id: string, anyway = false): Promise<boolean> {
    if (busy) return false;
    clearError();
    otherTab.hide();
    if (!anyway && (await tabs.otherTabHolds().catch(() => false))) {
      progressText.textContent = 'Nothing was loaded.';
      otherTab.show(() => void load(spec, id, true));
      return false;
    }
    tabs.hold();
    storageNotice.hidden = true;
    if (spec.kind === 'hub' && spec.token) {
      // The worker attaches the token only where the policy allows it; say so when it will not.
      spec = { ...spec, tokenPolicy: hub.auth().policy };
      hub.noteToken(spec.baseUrl ?? hub.baseUrl());
    }
    setBusy(true);
    cancel.hidden = false;
    cancel.disabled = false;
    progress.value = 0;
    progress.scrollIntoView({ block: 'nearest' });
    const tracker = new LoadProgressTracker();
    let downloaded = 0;
    const started = performance.now();
    let finished = false;
    const onProgress = (p: LoadProgress) => {
      // Progress arrives on its own message channel and can trail the load's result: ignore it once done.
      if (finished) return;
      if (p.downloadedBytes !== undefined) downloaded = p.downloadedBytes;
      const view = tracker.update(p, performance.now());
      progress.value = view.fraction;
      progressText.textContent = view.text;
    };
    try {
      if (spec.kind === 'hub' && spec.cache) void navigator.storage?.persist?.().catch(() => false);
      const limit = Number(weightLimit.value);
      const options = { ...hooks.loadOptions(), weightDtype: weightSelect.value as WeightChoice, ...(limit > 0 ? { weightBudgetBytes: limit * 2 ** 20 } : {}) };
      const info = await engine.load(spec, options, onProgress);
      finished = true;
      progress.value = 1;
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      const how = spec.kind === 'url' ? 'shipped with the app' : downloaded > 0 ? `${formatSize(downloaded)} downloaded` : cacheKeyOf(spec) ? 'from the cache, no download' : 'downloaded';
      progressText.textContent = `Loaded ${id}: ${info.architecture}, ${info.numLayers} layers, ${info.weightDtype} weights (${formatSize(info.weightBytes)}) on ${info.adapter.description}; ${how}, ${seconds} s.${info.weightNotice ? ` ${info.weightNotice}` : ''}${info.contextNotice ? ` ${info.contextNotice}` : ''}`;
      storageNotice.textContent = info.cacheNotice ?? '';
      storageNotice.hidden = !info.cacheNotice;
      const key = cacheKeyOf(spec);
      const source: ModelSourceSpec = spec.kind === 'files' && key ? { kind: 'cache', key, file: spec.file } : spec.kind === 'hub' ? { ...spec, token: undefined, tokenPolicy: undefined } : spec;
      hooks.onLoaded({ modelId: id, source, info });
      return true;
    } catch (err) {
      finished = true;
      progress.value = 0;
      if ((err as { name?: string })?.name === 'LoadCancelledError') {
        progressText.textContent = `Loading ${id} was cancelled. Chunks cached so far stay: load it again to resume.`;
        hooks.onCancelled?.();
      } else {
        progressText.textContent = `Loading ${id} failed.`;
        showError(err, recovery(err, spec, id));
      }
      return false;
    } finally {
      cancel.hidden = true;
      setBusy(false);
      void cache.refresh();
    }
  }

  /** Load one GGUF file of a hub repo through the cache. */
  async function loadGguf(baseUrl: string, repo: string, file: string): Promise<void> {
    await load({ kind: 'hub', repo, baseUrl, cache: true, token: tokenValue(), file }, `${repo}/${file}`);
  }

  /**
   * Validate a hub id's config (no weights move), show its estimates, then load it through the cache. A repo
   * of GGUF files (no config.json) gets a list of its .gguf files to pick from; `org/name/file.gguf` loads one.
   */
  async function loadHubModel(rawId: string): Promise<void> {
    if (busy) return;
    clearError();
    ggufList.replaceChildren();
    const baseUrl = hub.baseUrl();
    hub.noteToken(baseUrl);
    let repo: string;
    try {
      const ref = parseModelRef(rawId);
      repo = ref.repo;
      if (ref.file) {
        modelIdInfo.textContent = `${repo}: GGUF file ${ref.file}.`;
        await loadGguf(baseUrl, repo, ref.file);
        return;
      }
      progressText.textContent = `Checking ${repo}: listing its files…`;
      const files = await listHubFiles(baseUrl, repo, hub.auth());
      const ggufs = files ? ggufFilesOf(files) : [];
      if (files && ggufs.length && !files.some((f) => f.path === 'config.json')) {
        progressText.textContent = 'Nothing was downloaded.';
        modelIdInfo.textContent = `${repo} holds ${ggufs.length} GGUF file${ggufs.length === 1 ? '' : 's'}: pick one.`;
        ggufList.replaceChildren(renderGgufPicker(repo, ggufs, (file) => void loadGguf(baseUrl, repo, file)));
        ggufList.scrollIntoView({ block: 'nearest' }); // the list opens below the form, often off screen
        return;
      }
      progressText.textContent = `Checking ${repo}: reading config.json…`;
      const config = await fetchHubConfig(baseUrl, repo, hub.auth());
      const e = estimateModel(config);
      modelIdInfo.textContent = `${repo}: ${config.architecture}, ${config.numLayers} layers, ${formatCount(e.params)} params; weights ${formatSize(e.weightBytesF16)} (f16), KV at ${e.kvTokens} tokens ${formatSize(e.kv[0].bytes)} full, ${formatSize(e.kv[3].bytes)} kivi 2-bit.`;
    } catch (err) {
      progressText.textContent = 'Nothing was downloaded.';
      modelIdInfo.textContent = '';
      showError(err);
      return;
    }
    await load({ kind: 'hub', repo, baseUrl, cache: true, token: tokenValue() }, repo);
  }

  hub.hubUrl.addEventListener('change', () => catalog.probeSizes(hub.baseUrl()));
  ggufInput.addEventListener('change', async () => {
    const file = ggufInput.files?.[0];
    ggufInput.value = '';
    if (!file || busy) return;
    clearError();
    try {
      await checkGgufFile(file);
      await load({ kind: 'files', name: file.name, files: [file], file: file.name }, file.name);
    } catch (err) {
      showError(err);
    }
  });
  folder.addEventListener('change', async () => {
    const files = [...(folder.files ?? [])];
    folder.value = '';
    if (!files.length || busy) return;
    clearError();
    try {
      const picked = await checkModelFolder(files);
      await load({ kind: 'files', name: picked.name, files: picked.files }, picked.name);
    } catch (err) {
      showError(err);
    }
  });

  async function loadDemo(): Promise<void> {
    await load({ kind: 'url', baseUrl: new URL(DEMO_PATH, document.baseURI).href, label: 'stories260k (offline demo)', files: DEMO_FILES }, 'stories260k (offline demo)');
  }
  demo.addEventListener('click', () => void loadDemo());

  void cache.refresh();
  catalog.probeSizes(hub.baseUrl());
  return { element, loadDemo, load };
}
