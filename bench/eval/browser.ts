/**
 * Chromium back end of `npm run eval`: builds the app, serves it with `vite preview` next to the local hub,
 * opens the page's eval mode (src/ui/eval-mode.ts) once per model and replays that model's jobs through
 * `window.kvtabEval`, i.e. through the real engine Worker (SwiftShader WebGPU here).
 */
import os from 'node:os';
import path from 'node:path';
import { build } from 'vite';
import { openPageMode, withAppInChromium, withTimeout } from '../../scripts/chromium-app';
import { defaultRepos } from '../../scripts/hub-server';
import type { ModelInfo, QualityResult } from '../../src/worker/api';
import { EVAL_LOAD, type JobOutcome, type ModelJobs } from './jobs';

/** Longest single measurement (byte-llama N = 512 takes about 1.5 minutes on SwiftShader with 2 cores). */
const TASK_TIMEOUT_MS = 20 * 60_000;
const LOAD_TIMEOUT_MS = 5 * 60_000;

export interface BrowserRun {
  outcomes: JobOutcome[];
  chromium: string;
  adapter: string;
  errors: string[];
}

/**
 * Build the app into the OS temp folder (outside dist-bench/, which `npm run bench` empties when it builds).
 * The harness builds it before the Node phase, so both back ends run the same source even if it changes meanwhile.
 */
export async function buildEvalApp(root: string, log: (m: string) => void): Promise<string> {
  const outDir = path.join(os.tmpdir(), 'kvtab-eval-app');
  log(`Chromium: building the app into ${outDir}`);
  await build({ configFile: path.join(root, 'vite.config.ts'), logLevel: 'warn', build: { outDir, emptyOutDir: true } });
  return outDir;
}

/** Run every job of `plan` (already filtered to the browser subset) in headless Chromium on the app built in `outDir`. */
export async function runInChromium(root: string, outDir: string, modelsDir: string, plan: ModelJobs[], log: (m: string) => void, onOutcome: (o: JobOutcome) => void): Promise<BrowserRun> {
  return withAppInChromium(root, outDir, defaultRepos(modelsDir), async ({ browser, appUrl, hub }) => {
    const run: BrowserRun = { outcomes: [], chromium: browser.version(), adapter: '', errors: [] };
    for (const { model, file, load, jobs } of plan) {
      if (!jobs.length) continue;
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        page.on('pageerror', (e) => log(`  [page error] ${e.message}`));
        const query = new URLSearchParams({ eval: '1', model: `local/${model}`, hub: hub.baseUrl, options: JSON.stringify(load ?? EVAL_LOAD), ...(file ? { file } : {}) });
        const info = await openPageMode<ModelInfo>(page, `${appUrl}?${query}`, '#eval-status', 'ready', LOAD_TIMEOUT_MS);
        run.adapter = info.adapter.description;
        const backend = `chromium (${/swiftshader/i.test(info.adapter.description) ? 'swiftshader' : 'webgpu'})`;
        log(`Chromium: ${model}${file ? `/${file}` : ''} loaded on ${info.adapter.description}; ${jobs.length} jobs`);
        for (const job of jobs) {
          const out: JobOutcome = { id: job.id, model, backend };
          try {
            out.result = await withTimeout(
              page.evaluate((task) => (window.kvtabEval as NonNullable<typeof window.kvtabEval>)(task), job.task) as Promise<QualityResult>,
              TASK_TIMEOUT_MS,
              job.id,
            );
          } catch (err) {
            out.error = (err as Error).message;
            run.errors.push(`chromium ${job.id}: ${out.error}`);
          }
          run.outcomes.push(out);
          onOutcome(out);
        }
      } catch (err) {
        run.errors.push(`chromium ${model}: ${(err as Error).message}`);
        log(`Chromium: ${model} FAILED: ${(err as Error).message}`);
      } finally {
        await context.close();
      }
    }
    return run;
  });
}
