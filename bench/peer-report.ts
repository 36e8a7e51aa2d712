/**
 * peer.md for a peer report (bench/peer.ts): the per-round table, the golden checks and both texts.
 */
import type { PeerEngine, PeerReport } from './peer';

const fmt = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : '–');
const quote = (text: string) => '`' + JSON.stringify(text).slice(1, -1).replace(/`/g, '\\`') + '`';

/** peer.md: the table, the ratios, the golden checks and both texts. */
export function peerMarkdown(r: PeerReport): string {
  const rows: Array<[PeerEngine, string]> = [
    ['kvtab', `kvtab (${r.kvtabWeights || '?'} weights, WebGPU worker)`],
    ['wllama-gpu', `wllama ${r.wllamaVersion} n_gpu_layers 99 (${r.wllama_gpu_offloaded ? 'WebGPU' : 'not offloaded: CPU, 1 thread'})`],
    ['wllama-cpu', `wllama ${r.wllamaVersion} n_gpu_layers 0 (wasm CPU, 1 thread)`],
  ];
  const rounds = Array.from({ length: r.rounds }, (_, i) => i + 1);
  const cell = (e: PeerEngine, round: number) => {
    const s = r.samples.find((x) => x.engine === e && x.round === round);
    return s?.ok ? fmt(s.decodeTokensPerSecond) : 'failed';
  };
  const tokens = (e: PeerEngine) => {
    const s = r.samples.filter((x) => x.engine === e && x.ok);
    return s.length ? [...new Set(s.map((x) => `${x.generatedTokens} (${x.finishReason})`))].join(', ') : '–';
  };
  const lines = [
    '# Peer comparison: kvtab vs wllama',
    '',
    `Run ${r.date} at commit \`${r.commit}\`${r.dirty ? ' (with local changes)' : ''}; Chromium ${r.chromium}; kvtab adapter: ${r.kvtabAdapter || '?'}` +
      `${r.libllama ? `; libllama ${r.libllama}` : ''}.`,
    `Workload: stories260k (kvtab: HF folder over the local hub; wllama: \`${r.workload.gguf}\`, n_ctx ${r.workload.wllamaLoad.n_ctx}, ` +
      `n_threads ${r.workload.wllamaLoad.n_threads}), prompt "${r.workload.prompt}", up to ${r.workload.maxNewTokens} greedy tokens after a ` +
      `${r.workload.warmupTokens}-token warm-up; ${r.rounds} round(s), the three engines interleaved in each round, each in a fresh page.`,
    'Decode tok/s: kvtab (generated − 1) / decode time; wllama `timings.predicted_per_second`. Ratio: kvtab / wllama per round, median.',
    '',
    `| engine | ${rounds.map((i) => `round ${i}`).join(' | ')} | median decode tok/s | tokens (finish) | kvtab / this |`,
    `|---|${rounds.map(() => '---:|').join('')}---:|---|---:|`,
    ...rows.map(([e, label]) => {
      const ratio = e === 'wllama-gpu' ? fmt(r.ratio_vs_wllama_gpu, 2) : e === 'wllama-cpu' ? fmt(r.ratio_vs_wllama_cpu, 2) : '1';
      return `| ${label} | ${rounds.map((i) => cell(e, i)).join(' | ')} | ${fmt(r.median[e])} | ${tokens(e)} | ${ratio} |`;
    }),
    '',
    ...(r.wllamaPage.gpu && !r.wllama_gpu_offloaded
      ? [
          `Note: wllama's \`n_gpu_layers: 99\` run did not offload: llama.cpp found no WebGPU device (its load log: ` +
            `${r.wllamaPage.gpu.modelBuffers.map((l) => `\`${l.replace(/^\w+: /, '').replace(/\s+/g, ' ').trim()}\``).join(', ') || 'no model buffer line'}; ` +
            `page adapter ${r.wllamaPage.gpu.adapter ? `${r.wllamaPage.gpu.adapter.vendor}/${r.wllamaPage.gpu.adapter.architecture}, shader-f16 ${r.wllamaPage.gpu.adapter.shaderF16}` : 'none'}), ` +
            `so that row is llama.cpp's CPU path as well (\`wllama_gpu_offloaded: false\` in peer.json).`,
          '',
        ]
      : []),
    `Golden (${r.golden.compared}): kvtab ${r.golden.kvtab} (ids ${r.golden.kvtabIds}), wllama GPU ${r.golden.wllamaGpu}, wllama CPU ` +
      `${r.golden.wllamaCpu}; every round ${r.golden.allRounds}. Full texts equal: kvtab = wllama GPU ${r.golden.kvtabEqualsWllamaGpu}, ` +
      `kvtab = wllama CPU ${r.golden.kvtabEqualsWllamaCpu}, wllama GPU = CPU ${r.golden.wllamaGpuEqualsCpu}; same text every round ${r.golden.stableAcrossRounds}.`,
    '',
    'Texts (round 1):',
    '',
    ...rows.map(([e]) => `- ${e}: ${quote(r.texts[e])}`),
    '',
  ];
  if (r.errors.length) lines.push('Errors:', '', ...r.errors.map((e) => `- ${e}`), '');
  return lines.join('\n');
}
