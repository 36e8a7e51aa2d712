/**
 * A minimal page: pick a hub URL and a model, load it with a progress bar, stream a completion.
 * DOM only; every GPU call goes through the worker client.
 */
import type { EngineClient } from '../worker/client';
import { callback } from '../worker/client';
import type { LoadProgress, TokenEvent } from '../worker/api';
import { DEFAULT_HUB_URL } from '../model/source';

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Record<string, unknown> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node: HTMLElementTagNameMap[K] = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

function labeled(text: string, input: HTMLElement): HTMLLabelElement {
  return el('label', {}, text, input);
}

/** Mount the minimal load-and-complete view into `root`. */
export function mountBasicView(root: HTMLElement, client: EngineClient): void {
  const query = new URLSearchParams(location.search);
  const hubUrl = el('input', { id: 'hub-url', value: query.get('hub') ?? DEFAULT_HUB_URL });
  const repo = el('input', { id: 'model-id', value: query.get('model') ?? 'HuggingFaceTB/SmolLM2-135M-Instruct' });
  const loadButton = el('button', { id: 'load', textContent: 'Load model' });
  const progress = el('progress', { id: 'load-progress', max: 1, value: 0 });
  const progressText = el('span', { id: 'load-status', className: 'stats', textContent: 'No model loaded.' });
  const prompt = el('textarea', { id: 'prompt', rows: 3, value: query.get('prompt') ?? 'Once upon a time' });
  const maxTokens = el('input', { id: 'max-tokens', type: 'number', min: '1', value: query.get('max') ?? '60' });
  const generateButton = el('button', { id: 'generate', textContent: 'Generate', disabled: true });
  const stopButton = el('button', { id: 'stop', textContent: 'Stop', disabled: true });
  const output = el('div', { id: 'output', className: 'output' });
  const stats = el('div', { id: 'gen-stats', className: 'stats' });
  const error = el('div', { id: 'error', className: 'error', role: 'alert' });

  root.append(
    el('h1', {}, 'kvtab'),
    el('fieldset', {}, el('legend', {}, 'Model'), el('div', { className: 'row' }, labeled('Hub URL', hubUrl), labeled('Model id', repo), loadButton), progress, progressText),
    el('fieldset', {}, el('legend', {}, 'Prompt'), prompt, el('div', { className: 'row' }, labeled('Max new tokens', maxTokens), generateButton, stopButton)),
    output,
    stats,
    error,
  );

  const showError = (err: unknown) => {
    const e = err as Error;
    error.textContent = `${e.name ?? 'Error'}: ${e.message ?? String(err)}`;
  };

  loadButton.onclick = async () => {
    error.textContent = '';
    loadButton.disabled = generateButton.disabled = true;
    progress.value = 0;
    try {
      const onProgress = callback((p: LoadProgress) => {
        if (p.phase === 'weights' && p.bytesTotal > 0) progress.value = p.bytesDone / p.bytesTotal;
        if (p.phase === 'ready') progress.value = 1;
        progressText.textContent = p.phase === 'weights' ? `Downloading ${p.file}: ${(p.bytesDone / 2 ** 20).toFixed(1)} / ${(p.bytesTotal / 2 ** 20).toFixed(1)} MiB` : `${p.phase}…`;
      });
      const info = await client.api.load({ kind: 'hub', repo: repo.value.trim(), baseUrl: hubUrl.value.trim() }, {}, onProgress);
      progressText.textContent = `Loaded ${info.label}: ${info.architecture}, ${info.numLayers} layers, ${info.weightDtype} weights on ${info.adapter.description}.`;
      generateButton.disabled = false;
    } catch (err) {
      progressText.textContent = 'Load failed.';
      showError(err);
    } finally {
      loadButton.disabled = false;
    }
  };

  generateButton.onclick = async () => {
    error.textContent = '';
    output.textContent = '';
    generateButton.disabled = true;
    stopButton.disabled = false;
    try {
      const result = await client.api.generate(
        prompt.value,
        { maxNewTokens: Number(maxTokens.value) || 60 },
        callback((t: TokenEvent) => output.append(t.text)),
      );
      output.dataset.tokenIds = result.tokenIds.join(',');
      output.dataset.finish = result.finishReason;
      stats.textContent = `${result.tokenIds.length} tokens, ${result.finishReason}; prefill ${result.prefillTokensPerSecond.toFixed(1)} tok/s, decode ${result.decodeTokensPerSecond.toFixed(1)} tok/s`;
    } catch (err) {
      showError(err);
    } finally {
      generateButton.disabled = false;
      stopButton.disabled = true;
    }
  };
  stopButton.onclick = () => void client.api.abort();
}
