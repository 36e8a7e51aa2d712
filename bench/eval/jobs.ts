/**
 * The job list `npm run eval` hands to each back end: one QualityTask per job, grouped by model, in a JSON
 * file read by the Node/Dawn runner (bench/eval.ts) and replayed through the page's eval mode in Chromium.
 */
import type { LoadOptions, QualityResult, QualityTask } from '../../src/worker/api';

/** Load options of every evaluated model: f32 weights and f32 full-precision K/V (SwiftShader has no f16), steps of 64. */
export const EVAL_LOAD: LoadOptions = { kvMode: { mode: 'full' }, allLogits: true, prefillChunk: 64, weightDtype: 'f32', kvDtype: 'f32' };

/** What a job measures, for the report. */
export type JobMeta =
  | { what: 'perplexity'; mode: string; n: number; sweep?: boolean }
  /** One N-token window of a held-out text; `windows` are the prefix lengths reported (N among them). */
  | {
      what: 'divergence';
      mode: string;
      text: string;
      n: number;
      windows: number[];
      sweep: boolean;
      /** Read under an evicting cache of limitTokens slots (bench/eval/eviction.ts), sized to budgetBytes; its f16-layout bytes. */
      evict?: { limitTokens: number; policy: 'window' | 'saliency'; budgetBytes: number; kvBytesF16: number };
    }
  /** The copy test's window; spans are the position ranges scoring the first and second reading. */
  | { what: 'copytest'; mode: string; spans: [[number, number], [number, number]]; sweep: boolean }
  | { what: 'bytes'; mode: string; n: number; kvDtype: 'f32' | 'f16'; sweep?: boolean }
  | { what: 'greedy'; mode: string; promptTokens: number }
  | { what: 'passkey'; format: string; mode: string; context: number; trial: number; key: string; depth: number; needleToken: number; promptTokens: number }
  | { what: 'gguf-greedy' | 'gguf-top1'; kind: string; tokens: number };

export interface EvalJob {
  id: string;
  meta: JobMeta;
  task: QualityTask;
  /** Also run in Chromium (the perplexity subset). */
  browser?: boolean;
}

/** Jobs of one model, run after a single load. */
export interface ModelJobs {
  /** Folder name under the models dir, served as `local/<name>`. */
  model: string;
  /** A GGUF file of that folder to load (else the folder is read in Hugging Face layout). */
  file?: string;
  /** Load options (default EVAL_LOAD). */
  load?: LoadOptions;
  jobs: EvalJob[];
}

/** One finished job, as the runners print it (one JSON line each). */
export interface JobOutcome {
  id: string;
  model: string;
  backend: string;
  result?: QualityResult;
  error?: string;
}
