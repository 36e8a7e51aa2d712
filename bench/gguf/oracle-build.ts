/**
 * llama.cpp held to one of node-llama-cpp's CPU builds (libggml-cpu-<build>.so). llama.cpp loads the best build
 * the CPU runs; to run another, a child process works on a copy of tools/llama-oracle (in the system temp dir)
 * whose bins folder holds only that build's library, and reports from /proc/self/maps which one it mapped.
 * Used by bench/gguf-oracle-builds.ts (builds against builds) and `npm run bench:gguf -- --oracle-build B`.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ensureGguf, GGUF_SET, ggufFileName, type GgufKind } from '../../scripts/gguf-models';
import { greedyTokens, workload, type EngineRun } from './agreement';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ORACLE = path.join(ROOT, 'tools', 'llama-oracle');
const BINS = path.join('node_modules', '@node-llama-cpp', 'linux-x64', 'bins', 'linux-x64');
const SELF = fileURLToPath(import.meta.url);

/** One file's llama.cpp work: greedy continuation of `prompt` and teacher-forced top-1 over `ids`. */
export interface OracleJob {
  file: string;
  path: string;
  contextSize: number;
  prompt: number[];
  greedyTokens: number;
  ids: number[];
}

/** A GGUF file of the agreement set (written into `ggufDir` if missing) with its llama.cpp work and type mix. */
export interface GgufCase extends OracleJob {
  model: string;
  kind: GgufKind;
  typeBytes: Record<string, number>;
}

/** The context llama.cpp gets per model: room for the 512 teacher-forced ids (byte-llama-12l: its longer prompt). */
const ORACLE_CONTEXT: Record<string, number> = { stories260k: 512, 'byte-llama-12l': 1024 };

/** Every file of `models` (only `kinds`, when given) with its workload (bench/gguf/agreement.ts). */
export async function ggufCases(ggufDir: string, models: string[], kinds: string[] | null, body: string): Promise<GgufCase[]> {
  const cases: GgufCase[] = [];
  for (const model of models) {
    const { prompt, ids } = await workload(model, body);
    for (const kind of GGUF_SET[model].filter((k) => kinds === null || kinds.includes(k))) {
      const { file, typeBytes } = await ensureGguf(ggufDir, model, kind);
      cases.push({ model, kind, file: ggufFileName(model, kind), path: file, typeBytes, contextSize: ORACLE_CONTEXT[model], prompt, greedyTokens: greedyTokens(kind), ids });
    }
  }
  return cases;
}

/** Runs keyed by file, and the CPU libraries the process mapped. */
export interface OracleBuildResult {
  runs: Record<string, EngineRun>;
  libraries: string[];
}

/** A copy of the oracle package whose bins folder has only `build`'s CPU library (null: not shipped). */
function oracleCopy(build: string): string | null {
  const lib = `libggml-cpu-${build}.so`;
  if (!fs.existsSync(path.join(ORACLE, BINS, lib))) return null;
  const dir = path.join(os.tmpdir(), `kvtab-llama-oracle-${build}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.cpSync(ORACLE, dir, { recursive: true, verbatimSymlinks: true });
  for (const f of fs.readdirSync(path.join(dir, BINS))) if (/^libggml-cpu-.*\.so$/.test(f) && f !== lib) fs.rmSync(path.join(dir, BINS, f));
  return dir;
}

/**
 * Run `jobs` on llama.cpp with CPU build `build` (null: the default choice, every library present) in a child
 * process. Throws when the build is not shipped or does not run on this CPU.
 */
export function runOracleBuild(build: string | null, jobs: OracleJob[]): OracleBuildResult {
  const dir = build === null ? ORACLE : oracleCopy(build);
  if (!dir) throw new Error(`llama.cpp CPU build ${build} is not shipped (no libggml-cpu-${build}.so)`);
  const tag = `${build ?? 'default'}-${process.pid}`;
  const jobsFile = path.join(os.tmpdir(), `kvtab-oracle-jobs-${tag}.json`);
  const outFile = path.join(os.tmpdir(), `kvtab-oracle-runs-${tag}.json`);
  fs.writeFileSync(jobsFile, JSON.stringify(jobs));
  try {
    execFileSync('npx', ['tsx', SELF, '--child', dir, jobsFile, outFile], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
    return JSON.parse(fs.readFileSync(outFile, 'utf8')) as OracleBuildResult;
  } finally {
    fs.rmSync(jobsFile, { force: true });
    fs.rmSync(outFile, { force: true });
    if (build !== null) fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Child: every job on the oracle copy in `oracleDir`. */
async function child(oracleDir: string, jobsFile: string, outFile: string): Promise<void> {
  const { openOracle } = (await import(pathToFileURL(path.join(oracleDir, 'oracle.mjs')).href)) as typeof import('../../tools/llama-oracle/oracle.mjs');
  const jobs = JSON.parse(fs.readFileSync(jobsFile, 'utf8')) as OracleJob[];
  const runs: Record<string, EngineRun> = {};
  const libraries = new Set<string>();
  for (const j of jobs) {
    const oracle = await openOracle(j.path, { contextSize: j.contextSize });
    try {
      runs[j.file] = { greedy: await oracle.greedy(j.prompt, j.greedyTokens), top1: await oracle.teacherForcedTop1(j.ids) };
      // The CPU libraries mapped into this process: which build llama.cpp runs (and from which copy).
      for (const m of fs.readFileSync('/proc/self/maps', 'utf8').matchAll(/\S*libggml-cpu-\w+\.so/g)) libraries.add(path.relative(oracleDir, m[0]).startsWith('..') ? m[0] : path.basename(m[0]));
    } finally {
      await oracle.close();
    }
  }
  const result: OracleBuildResult = { runs, libraries: [...libraries] };
  fs.writeFileSync(outFile, JSON.stringify(result));
}

if (process.argv[2] === '--child') {
  child(process.argv[3], process.argv[4], process.argv[5]).then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
