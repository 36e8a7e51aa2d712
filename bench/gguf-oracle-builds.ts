/**
 * `npm run bench:gguf-builds`: llama.cpp against llama.cpp. node-llama-cpp ships one ggml CPU back end per x86
 * generation (libggml-cpu-<build>.so) and loads the best one the CPU runs; the agreement table
 * (bench/results/gguf-agreement.md) compares ours with whichever that is. This runs the same files, workloads and
 * bars (bench/gguf/agreement.ts) with llama.cpp held to one build at a time, and scores every build against the
 * machine's default one, as if it were ours: how far the oracle's own answers move with the CPU it runs on.
 *
 * Each build runs in a child process (bench/gguf/oracle-build.ts), which names the CPU library it mapped.
 * Flags: --builds a,b (default sapphirerapids,icelake,skylakex,haswell,sse42,x64; builds this CPU cannot run
 * are reported and skipped), --models a,b, --kinds A,B, --out FILE (default bench/results/gguf-oracle-builds.md).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedModelsDir } from '../scripts/hub-server';
import { draculaBody } from './eval/text';
import { score } from './gguf/agreement';
import { ggufCases, runOracleBuild, type OracleBuildResult } from './gguf/oracle-build';
import { git } from './git';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const option = (n: string, fallback: string) => (argv.includes(`--${n}`) ? argv[argv.indexOf(`--${n}`) + 1] : fallback);
const log = (m: string) => process.stderr.write(`[gguf-builds] ${m}\n`);

async function main(): Promise<void> {
  const builds = option('builds', 'sapphirerapids,icelake,skylakex,haswell,sse42,x64').split(',');
  const models = option('models', 'stories260k,byte-llama-12l').split(',');
  const kinds = argv.includes('--kinds') ? option('kinds', '').split(',') : null;
  const out = path.resolve(ROOT, option('out', 'bench/results/gguf-oracle-builds.md'));
  const body = draculaBody(path.join(sharedModelsDir(), '..', 'eval', 'dracula.txt'));
  const jobs = await ggufCases(path.join(ROOT, '.cache', 'gguf'), models, kinds, body);
  const results = new Map<string, OracleBuildResult>();
  const skipped: string[] = [];
  const run = (build: string | null) => {
    const t0 = performance.now();
    const r = runOracleBuild(build, jobs);
    log(`${build ?? 'default'}: ${r.libraries.join(', ') || 'no CPU library mapped'}, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return r;
  };
  const base = run(null);
  for (const build of builds) {
    try {
      results.set(build, run(build));
    } catch (err) {
      skipped.push(`${build} (${(err as Error).message.split('\n')[0].slice(0, 120)})`);
    }
  }

  const commit = git(['rev-parse', '--short', 'HEAD']);
  const lines = [
    '# llama.cpp against llama.cpp: one GGUF file, different CPU builds',
    '',
    `Commit ${commit}, ${new Date().toISOString()}. Command: \`npm run bench:gguf-builds${argv.length ? ' -- ' + argv.join(' ') : ''}\`. Machine: ${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores.`,
    `Oracle: node-llama-cpp 3.21.1, 1 thread, F32 KV. Default build (all libraries present): ${base.libraries.join(', ') || '?'}.`,
    '',
    'Every row scores llama.cpp held to one CPU build against llama.cpp with its default build on this machine, with the',
    "files, workloads and bars of bench/results/gguf-agreement.md (F32 and Q8_0: greedy equal over 64 tokens; other types:",
    'top-1 ≥ 99% over 512 teacher-forced tokens and greedy ≥ 90% over 128). A miss here is the oracle missing its own bar.',
    ...(skipped.length ? ['', `Skipped: ${skipped.join('; ')}.`] : []),
    '',
    '| model | file type | build (library loaded) | greedy | first divergence | top-1 | first top-1 mismatch | bar |',
    '|---|---|---|---:|---:|---:|---:|---|',
  ];
  let misses = 0;
  let rows = 0;
  for (const [build, r] of results) {
    for (const j of jobs) {
      const a = score(j.kind, r.runs[j.file], base.runs[j.file]);
      rows++;
      if (!a.pass) misses++;
      lines.push(
        `| ${j.model} | ${j.kind} | ${build} (${r.libraries.join(', ') || '?'}) | ${(a.greedyAgreement * 100).toFixed(1)}% of ${a.greedyTokens} | ${a.greedyPrefix < a.greedyTokens ? a.greedyPrefix : '—'} | ${a.top1Matches}/${a.top1Tokens} (${(a.top1Agreement * 100).toFixed(1)}%) | ${a.firstTop1Mismatch >= 0 ? a.firstTop1Mismatch : '—'} | ${a.pass ? 'pass' : '**miss**'} |`,
      );
    }
  }
  lines.splice(lines.length - rows - 2, 0, `Misses: ${misses} of ${rows} rows.`, '');
  fs.writeFileSync(out, lines.join('\n') + '\n');
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
