/**
 * The page shell: header, chat history, chat, live cache meter and the settings panel (Model, Generation,
 * Compression). Wires the model manager (src/ui/model-manager.ts), the chat controller, the meter and the
 * settings to the engine worker; when the worker dies, a banner offers Restart engine (the chat is kept, the
 * last model loads again). Desktop shows every part at once; phones show one view at a time, chosen
 * by the header tabs, with the meter above the chat.
 */
import type { KvtabEngine } from '../lib/engine';
import { callback, type EngineClient } from '../worker/client';
import type { DeviceRecoveryEvent, ModelInfo } from '../worker/api';
import type { ModelSourceSpec } from '../model/source';
import { ChatHistory } from '../storage/chat-history';
import { ChatController } from './chat/chat-controller';
import { el, errorText } from './dom';
import { EngineCrashBanner } from './engine-crash';
import { CacheMeter } from './meter/cache-meter';
import { mountModelManager } from './model-manager';
import { mountCompressionPanel } from './settings/compression-panel';
import { mountGenerationPanel } from './settings/generation-panel';
import { kvSettingsFromSpec, kvSpecFromSettings, specName } from './settings/kv-modes';
import { budgetOf, SettingsStore } from './settings/settings-store';
import './app.css';

type View = 'chat' | 'chats' | 'settings';
type PanelTab = 'model' | 'generation' | 'compression';

/** The words shown when the browser has no WebGPU. */
export const NO_WEBGPU_MESSAGE =
  'WebGPU is not available in this browser, so models cannot run here. Use a recent Chrome or Edge (113 or later) on a ' +
  'desktop or Android, or another browser with WebGPU turned on (on Linux, Chrome needs chrome://flags/#enable-unsafe-webgpu). ' +
  'Your saved chats and settings still work.';

/**
 * Mount the app into `root`. `engine` is the library's engine (src/lib) on the app's worker client: replies,
 * loads and cache calls go through its public API; the client itself is used for crashes, restarts and device loss.
 */
export async function mountApp(root: HTMLElement, engine: KvtabEngine): Promise<void> {
  const client = engine.client as EngineClient;
  const settingsStore = new SettingsStore();
  const settings = await settingsStore.load();
  const save = () => void settingsStore.save(settings).catch((err) => console.warn('Saving settings failed:', err));

  root.classList.add('app');
  const setView = (view: View) => {
    root.dataset.view = view;
    for (const [v, b] of viewTabs) b.setAttribute('aria-selected', String(v === view));
  };
  const viewTabs = new Map<View, HTMLButtonElement>(
    (['chat', 'chats', 'settings'] as const).map((v) => {
      const b = el('button', { type: 'button', id: `view-${v}`, className: 'view-tab', textContent: v[0].toUpperCase() + v.slice(1), role: 'tab' });
      b.onclick = () => setView(v);
      return [v, b];
    }),
  );
  const modelStatus = el('span', { id: 'model-status', className: 'model-status', textContent: 'No model loaded', dataset: { state: 'none' } });
  const reloadLast = el('button', { id: 'reload-last-model', type: 'button', hidden: true });
  const header = el('header', { className: 'app-header' }, el('h1', {}, 'kvtab'), modelStatus, reloadLast, el('nav', { className: 'view-tabs', role: 'tablist' }, ...viewTabs.values()));

  const banner = el('div', { id: 'gpu-warning', className: 'banner warning', role: 'alert', hidden: true });
  const hasWebGpu = 'gpu' in navigator && !!(navigator as Navigator & { gpu?: unknown }).gpu;
  if (!hasWebGpu) {
    banner.textContent = NO_WEBGPU_MESSAGE;
    banner.hidden = false;
  }

  const meter = new CacheMeter();
  meter.liveToggle.checked = settings.liveMeter;
  meter.liveToggle.addEventListener('change', () => {
    settings.liveMeter = meter.liveToggle.checked;
    save();
  });
  meter.setBudget(budgetOf(settings)?.bytes ?? null);

  // Settings panel: Model | Generation | Compression.
  const pages = {
    model: el('div', { id: 'model-manager-panel', className: 'panel-page' }),
    generation: el('div', { id: 'generation-settings', className: 'panel-page' }),
    compression: el('div', { id: 'compression-settings', className: 'panel-page' }),
  } satisfies Record<PanelTab, HTMLElement>;
  const panelTabs = el('nav', { className: 'panel-tabs', role: 'tablist' });
  const setTab = (tab: PanelTab) => {
    for (const [t, page] of Object.entries(pages) as Array<[PanelTab, HTMLElement]>) page.hidden = t !== tab;
    for (const b of panelTabs.children) b.setAttribute('aria-selected', String((b as HTMLElement).dataset.tab === tab));
  };
  for (const tab of Object.keys(pages) as PanelTab[]) {
    const b = el('button', { type: 'button', id: `tab-${tab}`, role: 'tab', textContent: tab[0].toUpperCase() + tab.slice(1), dataset: { tab } });
    b.onclick = () => setTab(tab);
    panelTabs.append(b);
  }
  const panel = el('section', { id: 'settings-panel', className: 'app-panel' }, panelTabs, ...Object.values(pages));

  const chat = new ChatController({
    engine,
    settings,
    history: new ChatHistory(),
    meter,
    banner,
    onKvEscalated: (spec) => {
      settings.kv = kvSettingsFromSpec(spec, settings.kv);
      compression.showKv(settings.kv);
      compression.setStatus(`Memory budget: now ${specName(spec)}.`);
      save();
    },
    showChatView: () => setView('chat'),
  });

  root.replaceChildren(header, chat.list.element, chat.view.element, meter.element, panel);
  const crashBanner = new EngineCrashBanner(() => restartEngine());
  banner.after(crashBanner.element);
  setView('chat');
  setTab('model');

  let model: ModelInfo | null = null;
  const generation = mountGenerationPanel(pages.generation, settings, () => {
    save();
    chat.refreshFormat();
    if (model) chat.setModel(model);
  });
  const compression = mountCompressionPanel(pages.compression, settings, {
    onKvChange: async (kv) => {
      save();
      const spec = kvSpecFromSettings(kv);
      if (!model) {
        compression.setStatus(`${specName(spec)} will be used when a model loads.`);
        return;
      }
      try {
        const stats = await chat.applyKv(spec);
        compression.setStatus(stats ? `Applied ${stats.kvMode} to ${stats.tokensHeld} cached tokens.` : `${specName(spec)} applies when the current reply ends.`);
      } catch (err) {
        compression.setStatus(`Could not switch to ${specName(spec)}: ${errorText(err)}`, 'error');
        chat.notice(`Switching the KV cache to ${specName(spec)} failed: ${errorText(err)}. The conversation is kept; the next reply re-reads it.`, 'error');
      }
    },
    onBudgetChange: () => {
      save();
      meter.setBudget(budgetOf(settings)?.bytes ?? null);
    },
  });

  let readyText = 'No model loaded';
  let lastLoaded: { source: ModelSourceSpec; modelId: string } | null = null;
  const showStatus = (text: string, state: 'none' | 'loading' | 'ready' | 'error') => {
    modelStatus.textContent = text;
    modelStatus.dataset.state = state;
  };
  const manager = mountModelManager(pages.model, engine, {
    loadOptions: () => ({ kvMode: kvSpecFromSettings(settings.kv), weightDtype: settings.weights }),
    weightChoice: () => settings.weights,
    weightLimitMiB: () => settings.weightLimitMiB,
    onWeightChoice: (choice, limitMiB) => {
      settings.weights = choice;
      settings.weightLimitMiB = limitMiB;
      save();
    },
    onLoaded: (loaded) => {
      model = loaded.info;
      const info = loaded.info;
      readyText = `${loaded.modelId} · ${info.numLayers} layers · ${info.weightDtype} on ${info.adapter.description || 'GPU'}`;
      reloadLast.hidden = true;
      lastLoaded = { source: loaded.source, modelId: loaded.modelId };
      localStorage.setItem(LAST_MODEL_KEY, JSON.stringify(lastLoaded));
      showStatus(readyText, 'ready');
      meter.setAdapterF16(info.adapter.f16);
      compression.setLayerCount(info.numLayers);
      chat.setModel(info);
      generation.setModelDefaults(info.generationDefaults);
      if (info.weightNotice) chat.notice(info.weightNotice, 'info');
      if (info.contextNotice) chat.notice(info.contextNotice, 'info');
      if (info.cacheNotice) chat.notice(info.cacheNotice, 'info');
      void engine.kv.stats().then((s) => meter.update(s));
      setView('chat');
    },
    onError: (message) => {
      chat.notice(`Model: ${message}`, 'error');
      refreshLoaded();
    },
    onCancelled: () => refreshLoaded(false),
    onBusy: (busy) => {
      chat.setEngineBusy(busy);
      if (busy) showStatus('Loading a model…', 'loading');
      else if (modelStatus.dataset.state === 'loading') showStatus(readyText, model ? 'ready' : 'none');
    },
  });
  /** A failed or cancelled load may have replaced the previous model: ask the engine what is loaded now. */
  function refreshLoaded(failed = true): void {
    void engine.kv.stats().then(
      (stats) => {
        if (!stats.loaded) {
          model = null;
          readyText = 'No model loaded';
          chat.setModel(null);
        }
        meter.update(stats);
        showStatus(model ? readyText : 'No model loaded', model ? 'ready' : failed ? 'error' : 'none');
      },
      () => showStatus('No model loaded', 'error'),
    );
  }
  // After a reload, one click loads the last model again (from the weight cache when it was cached).
  const last = readLastModel();
  if (last && hasWebGpu) {
    reloadLast.textContent = `Load ${last.modelId} again`;
    reloadLast.hidden = false;
    reloadLast.onclick = () => {
      reloadLast.hidden = true;
      void manager.load(last.source, last.modelId).then((ok) => (reloadLast.hidden = ok));
    };
  }

  // The worker died: pending calls have failed (a reply in flight ends with its text so far); nothing is loaded.
  client.onCrash((err) => {
    model = null;
    readyText = 'No model loaded';
    chat.setModel(null);
    showStatus('Engine stopped', 'error');
    crashBanner.show(err);
  });
  // An unexpected GPU device loss: the engine reloads the model and refills the chat's cache on its own; say how it went.
  const watchDevice = () =>
    void client.api
      .watchDevice(
        callback((e: DeviceRecoveryEvent) => {
          chat.notice(e.message, e.kind === 'recovered' ? 'info' : 'error');
          if (e.kind === 'failed') {
            model = null;
            readyText = 'No model loaded';
            chat.setModel(null);
            showStatus('No model loaded', 'error');
          }
          void engine.kv.stats().then((s) => meter.update(s), () => {});
        }),
      )
      .catch(() => {});
  watchDevice();
  /** A fresh worker, then the last model again (hub models come from the IndexedDB cache). */
  async function restartEngine(): Promise<boolean> {
    client.restart();
    watchDevice();
    showStatus('No model loaded', 'none');
    const last = lastLoaded ?? readLastModel();
    if (!last) {
      chat.notice('The engine restarted. Load a model to go on; the conversation is kept.', 'info');
      return true;
    }
    const ok = await manager.load(last.source, last.modelId);
    if (ok) chat.notice(`The engine restarted and ${last.modelId} loaded again. The conversation is kept; the next reply re-reads it.`, 'info');
    return ok;
  }
  await chat.init();
}

const LAST_MODEL_KEY = 'kvtab.lastModel';

function readLastModel(): { source: ModelSourceSpec; modelId: string } | null {
  try {
    const v = JSON.parse(localStorage.getItem(LAST_MODEL_KEY) ?? 'null');
    return v && typeof v.modelId === 'string' && v.source && v.source.kind !== 'files' ? v : null;
  } catch {
    return null;
  }
}
