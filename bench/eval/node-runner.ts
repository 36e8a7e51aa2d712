/**
 * Runs a jobs file on the Node/Dawn back end: builds bench/eval.ts with vite.bench.config.ts (the engine
 * imports WGSL with `?raw`) into dist-bench/eval-node/ and streams its JSON lines back as outcomes.
 * Shared by `npm run eval` and the GGUF agreement benchmark.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { build } from 'vite';
import type { JobOutcome } from './jobs';

/** Per loaded model, what the runner reports before its jobs. */
export interface LoadedReport {
  adapter: string;
  backend: string;
  model: string;
  file?: string;
  weightDtype?: string;
  weightBytes?: number;
}

/** Build the runner and run every job of `jobsFile` against the models under `modelsDir`; outcomes in order. */
export async function runJobsInNode(
  root: string,
  jobsFile: string,
  modelsDir: string,
  log: (m: string) => void,
  onOutcome: (o: JobOutcome, done: number) => void,
  backends: Record<string, string>,
  onLoaded: (r: LoadedReport) => void = () => {},
): Promise<JobOutcome[]> {
  log('Node/Dawn: building dist-bench/eval-node/eval.js');
  await build({ configFile: path.join(root, 'vite.bench.config.ts'), root, logLevel: 'warn', build: { outDir: path.join(root, 'dist-bench/eval-node') } });
  log(`Node/Dawn: running ${jobsFile} with VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES ?? '(unset)'}`);
  const child = spawn(process.execPath, [path.join(root, 'dist-bench/eval-node/eval.js'), '--jobs', jobsFile, '--models', modelsDir], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const outcomes: JobOutcome[] = [];
  for await (const line of readline.createInterface({ input: child.stdout })) {
    if (!line.startsWith('{')) continue;
    const o = JSON.parse(line) as JobOutcome | LoadedReport;
    if ('adapter' in o) {
      backends[o.backend] = o.adapter;
      onLoaded(o);
    } else {
      outcomes.push(o);
      onOutcome(o, outcomes.length);
    }
  }
  const code = await new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.on('close', resolve)));
  if (code !== 0) throw new Error(`the Node runner exited with ${code} after ${outcomes.length} jobs`);
  return outcomes;
}
