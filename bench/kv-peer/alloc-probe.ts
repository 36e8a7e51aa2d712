/**
 * llama.cpp's own account of its KV allocation: the `llama_kv_cache: size = …` line it logs when a context is
 * created. Each probe runs in a child process, because node-llama-cpp 3.21.1 loses the custom logger of every
 * second Llama instance in one process (its setLogger releases the previous thread-safe function, whose
 * finalizer then runs late and clears the flag of the new one), so in-process capture is unreliable.
 *
 * Run as a script (`node --import tsx alloc-probe.ts '<json>'`) it opens one context and prints one JSON line.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openOracle } from '../../tools/llama-oracle/oracle.mjs';
import type { PeerConfig } from './configs';

/** What llama.cpp logged about the KV cache of a context of `cells` cells. */
export interface KvAllocation {
  /** Context size requested and what llama.cpp made of it. */
  requested: number;
  cells: number;
  /** Total, K and V sizes as logged (MiB, two decimals). */
  totalMiB: number;
  keyMiB: number;
  valueMiB: number;
  keyType: string;
  valueType: string;
  /** Whether llama.cpp Hadamard-rotates K / V before quantizing them (its attn_rot_k / attn_rot_v lines). */
  rotK: boolean | null;
  rotV: boolean | null;
  /** The raw log lines. */
  lines: string[];
}

interface ProbeArgs {
  gguf: string;
  contextSize: number;
  config: PeerConfig;
}

const SIZE_LINE = /llama_kv_cache: size =\s*([\d.]+) MiB \(\s*(\d+) cells,.*K \((\w+)\):\s*([\d.]+) MiB, V \((\w+)\):\s*([\d.]+) MiB/;

/** Open one context (in this process) and read its KV log lines. */
async function probeHere(a: ProbeArgs): Promise<KvAllocation> {
  const lines: string[] = [];
  const { config: c } = a;
  const oracle = await openOracle(a.gguf, {
    contextSize: a.contextSize,
    batchSize: 64,
    threads: 1,
    flashAttention: c.flashAttention,
    kvCacheKeyType: c.key,
    kvCacheValueType: c.value,
    kvRotation: c.rotation,
    logLevel: 'info',
    logger: (_level, message) => {
      for (const l of message.split('\n')) if (/llama_kv_cache|attention rotation|load_backend/.test(l)) lines.push(l.trim());
    },
  });
  await oracle.close();
  // The logger is fed through a thread-safe function: let queued lines arrive.
  await new Promise((r) => setTimeout(r, 50));
  const m = lines.map((l) => SIZE_LINE.exec(l)).find((x) => x);
  if (!m) throw new Error(`no "llama_kv_cache: size" line in llama.cpp's log (${lines.length} KV lines captured)`);
  const rot = (which: 'k' | 'v') => {
    const l = lines.find((x) => x.includes(`attn_rot_${which} =`));
    return l ? / = 1,/.test(l) : null;
  };
  return {
    requested: a.contextSize,
    cells: Number(m[2]),
    totalMiB: Number(m[1]),
    keyType: m[3],
    keyMiB: Number(m[4]),
    valueType: m[5],
    valueMiB: Number(m[6]),
    rotK: rot('k'),
    rotV: rot('v'),
    lines,
  };
}

const SELF = fileURLToPath(import.meta.url);

/** Probe a configuration's KV allocation for a context of `contextSize` in a fresh Node process. */
export function probeAllocation(gguf: string, contextSize: number, config: PeerConfig): KvAllocation {
  const out = execFileSync(process.execPath, ['--import', 'tsx', SELF, JSON.stringify({ gguf, contextSize, config } satisfies ProbeArgs)], {
    cwd: path.resolve(path.dirname(SELF), '..', '..'),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 120_000,
  });
  const last = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!last) throw new Error(`allocation probe printed no result: ${out.slice(-500)}`);
  return JSON.parse(last) as KvAllocation;
}

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  const args = JSON.parse(process.argv[2]) as ProbeArgs;
  probeHere(args).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
