/**
 * Quality-evaluation mode of the page, used by `npm run eval` (bench/quality.ts drives it with Playwright).
 * Opened as `/?eval=1&model=local/byte-llama-12l&hub=<base>&options=<LoadOptions JSON>`: loads the model
 * through the engine worker, then exposes `window.kvtabEval(task)`, which runs one QualityTask in the worker
 * (`measureQuality`) and resolves to its QualityResult. `<pre id="eval-status" data-status="ready|error">`
 * holds the ModelInfo (or the error) once loading ends. DOM only; every GPU call stays in the worker.
 */
import type { EngineClient } from '../worker/client';
import type { LoadOptions, QualityResult, QualityTask } from '../worker/api';
import { DEFAULT_HUB_URL } from '../model/source';

declare global {
  interface Window {
    /** Set in eval mode once the model is loaded. */
    kvtabEval?: (task: QualityTask) => Promise<QualityResult>;
  }
}

/** Whether the page was opened in quality-evaluation mode. */
export function isEvalMode(query: URLSearchParams): boolean {
  return query.has('eval');
}

function loadOptions(query: URLSearchParams): LoadOptions {
  const text = query.get('options');
  if (!text) return { allLogits: true, prefillChunk: 64 };
  const parsed: unknown = JSON.parse(text);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`options must be a JSON object, got ${text}`);
  return parsed as LoadOptions;
}

/** Load the model the query names and expose the measurement entry point. */
export async function runEvalMode(root: HTMLElement, client: EngineClient, query: URLSearchParams): Promise<void> {
  const status = document.createElement('p');
  const result = document.createElement('pre');
  result.id = 'eval-status';
  root.append(status, result);
  const say = (text: string) => {
    status.textContent = text;
    console.log(`[eval] ${text}`);
  };
  try {
    const model = query.get('model') ?? 'local/stories260k';
    const baseUrl = query.get('hub') ?? DEFAULT_HUB_URL;
    say(`Loading ${model} from ${baseUrl}…`);
    const file = query.get('file') ?? undefined; // a GGUF file of the repo
    const info = await client.api.load({ kind: 'hub', repo: model, baseUrl, ...(file ? { file } : {}) }, loadOptions(query));
    let done = 0;
    window.kvtabEval = async (task) => {
      const out = await client.api.measureQuality(task);
      say(`${++done} measurement(s) done; last: ${task.kind} in ${task.kvMode.mode} mode.`);
      return out;
    };
    result.textContent = JSON.stringify(info, null, 2);
    result.dataset.status = 'ready';
    say(`Loaded ${info.label} (${info.weightDtype} on ${info.adapter.description}); waiting for tasks.`);
  } catch (err) {
    const e = err as Error;
    result.textContent = JSON.stringify({ error: `${e.name ?? 'Error'}: ${e.message ?? String(err)}` });
    result.dataset.status = 'error';
    say('Failed.');
  }
}
