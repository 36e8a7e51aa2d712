// The wllama side of the peer benchmark (bench/peer.ts). Plain ES module, no bundler: the server maps
// /wllama/ to node_modules/@wllama/wllama/esm/ and /models/ to the shared GGUF files.
import { Wllama } from '/wllama/index.js';

const status = document.getElementById('status');
const say = (text) => {
  status.textContent = text;
  console.log(`[peer] ${text}`);
};

/** Native and JS log lines worth keeping: the backend, device and layer-offload messages. */
const KEEP = /webgpu|wgpu|gpu|offload|device|backend|cpu|thread|compat|warn|error|fail/i;

/**
 * Load the GGUF with wllama and run one greedy completion (after an optional warm-up completion).
 * options: { modelUrl, prompt, maxTokens, warmupTokens, nGpuLayers, nCtx, nThreads, allLogs? }
 */
window.kvtabPeerRun = async (options) => {
  const logs = [];
  const keep = (level) => (...args) => {
    const line = args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
    if ((options.allLogs || level !== 'debug' || KEEP.test(line)) && logs.length < 400) logs.push(`${level}: ${line}`);
  };
  const logger = { debug: keep('debug'), log: keep('log'), warn: keep('warn'), error: keep('error') };
  // Only the local wasm: never the CDN (no network here), never the compat build.
  const wllama = new Wllama({ default: new URL('/wllama/wasm/wllama.wasm', location.href).href }, { logger });
  wllama.setCompat(null);
  const t0 = performance.now();
  say(`Loading ${options.modelUrl} (n_gpu_layers ${options.nGpuLayers})…`);
  await wllama.loadModelFromUrl(options.modelUrl, {
    n_ctx: options.nCtx,
    n_gpu_layers: options.nGpuLayers,
    n_threads: options.nThreads,
    ...(options.logLevel ? { log_level: options.logLevel } : {}),
    useCache: false,
  });
  const loadMs = performance.now() - t0;
  const info = wllama.getLoadedContextInfo();
  let warmup = null;
  if (options.warmupTokens > 0) {
    say(`Warm-up: ${options.warmupTokens} tokens…`);
    const w = await wllama.createCompletion({ prompt: options.prompt, max_tokens: options.warmupTokens, temperature: 0 });
    warmup = { text: w.choices[0]?.text ?? '', timings: w.timings ?? null };
  }
  say(`Generating ${options.maxTokens} greedy tokens…`);
  const res = await wllama.createCompletion({ prompt: options.prompt, max_tokens: options.maxTokens, temperature: 0 });
  const choice = res.choices[0];
  // What the page's own adapter offers (ggml-webgpu needs shader-f16; SwiftShader has none).
  const adapter = navigator.gpu ? await navigator.gpu.requestAdapter() : null;
  const out = {
    libllama: Wllama.getLibllamaVersion(),
    adapter: adapter ? { vendor: adapter.info?.vendor ?? '', architecture: adapter.info?.architecture ?? '', shaderF16: adapter.features.has('shader-f16') } : null,
    supportWebGPU: wllama.isSupportWebGPU(),
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    loadMs,
    text: choice?.text ?? '',
    finishReason: choice?.finish_reason ?? null,
    usage: res.usage ?? null,
    timings: res.timings ?? null,
    warmup,
    context: {
      n_ctx: info.n_ctx,
      n_vocab: info.n_vocab,
      n_layer: info.n_layer,
      token_bos: info.token_bos,
      token_eos: info.token_eos,
      add_bos_token: info.add_bos_token,
    },
    logs,
  };
  await wllama.exit();
  say(`Done: ${out.timings?.predicted_n ?? '?'} tokens at ${out.timings?.predicted_per_second?.toFixed(1) ?? '?'} tok/s.`);
  return out;
};

window.kvtabPeerReady = true;
say('Ready.');
