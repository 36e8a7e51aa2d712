/**
 * Node/Dawn runner of `npm run eval` (bundled by vite.bench.config.ts into dist-bench/eval.js, because the
 * engine imports WGSL with `?raw`): loads each model of a job file through the real Engine on Dawn and runs
 * its QualityTasks, printing one JSON line per finished job (JobOutcome) and `{"adapter": …}` per model.
 * Usage: node dist-bench/eval.js --jobs FILE [--models DIR]. The orchestrator is bench/quality.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { create, globals } from 'webgpu';
import { defaultRepos, sharedModelsDir, startHubServer } from '../scripts/hub-server';
import { Engine } from '../src/engine/engine';
import { EVAL_LOAD, type JobOutcome, type ModelJobs } from './eval/jobs';

const argv = process.argv.slice(2);
const option = (name: string, fallback: string | null = null) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
};

async function main(): Promise<void> {
  const jobsFile = option('jobs');
  if (!jobsFile) throw new Error('usage: node dist-bench/eval.js --jobs FILE [--models DIR]');
  const plan = JSON.parse(fs.readFileSync(jobsFile, 'utf8')) as ModelJobs[];
  Object.assign(globalThis, globals);
  const hub = await startHubServer({ repos: defaultRepos(option('models') ?? sharedModelsDir()) });
  const backend = `node-dawn (${path.basename(process.env.VK_ICD_FILENAMES ?? 'default', '.json').replace(/_icd$/, '')})`;
  const engine = new Engine(create([]) as unknown as GPU);
  try {
    for (const { model, file, load, jobs } of plan) {
      const info = await engine.load({ kind: 'hub', repo: `local/${model}`, baseUrl: hub.baseUrl, ...(file ? { file } : {}) }, load ?? EVAL_LOAD);
      process.stdout.write(JSON.stringify({ adapter: info.adapter.description, backend, model, file, weightDtype: info.weightDtype, weightBytes: info.weightBytes }) + '\n');
      for (const job of jobs) {
        const out: JobOutcome = { id: job.id, model, backend };
        try {
          out.result = await engine.measureQuality(job.task);
        } catch (err) {
          out.error = `${(err as Error).name}: ${(err as Error).message}`;
        }
        process.stdout.write(JSON.stringify(out) + '\n');
      }
    }
  } finally {
    await engine.unload();
    await hub.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
