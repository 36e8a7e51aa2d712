/**
 * Stand-in for `onnxruntime-web` (and `onnxruntime-common`) in the app build (vite.config.ts `resolve.alias`).
 *
 * kvtab uses `@huggingface/transformers` only for `PreTrainedTokenizer` (src/model/tokenizer.ts): BPE,
 * normalization and chat templates, all plain JavaScript. It never runs an ONNX model: the forward pass is the
 * app's own WebGPU kernels. Yet `transformers.web.js` imports onnxruntime-web at module load, which put about
 * 400 kB of ONNX Runtime JS and a 26.8 MB `ort-wasm-simd-threaded.asyncify.wasm` into `dist/` that nothing ever
 * fetched. This module gives transformers.js the names it reads when it loads (`InferenceSession`, `Tensor`,
 * `env`) and nothing else: creating a session or an ONNX tensor throws an Error that says why.
 *
 * `env` is left undefined on purpose: transformers.js then skips configuring ORT's wasm paths (it would otherwise
 * point them at a CDN). Unit tests (vitest, Node) do not use the alias and load the real packages.
 */

const MESSAGE = 'ONNX Runtime is not part of this build: kvtab uses @huggingface/transformers only for tokenizers and runs models with its own WebGPU kernels (see src/vendor/onnxruntime-stub.ts).';

function unavailable(what: string): Error {
  return new Error(`${what}: ${MESSAGE}`);
}

/** `onnxruntime-common`'s Tensor: constructing one throws (`x instanceof Tensor` stays false and harmless). */
export class Tensor {
  constructor(..._args: unknown[]) {
    throw unavailable('new ort.Tensor()');
  }
}

/** `onnxruntime-web`'s InferenceSession: `create` rejects. */
export const InferenceSession = {
  create(..._args: unknown[]): Promise<never> {
    return Promise.reject(unavailable('ort.InferenceSession.create()'));
  },
};

/** No ORT environment: transformers.js checks `ONNX.env` and skips its ORT set-up when it is undefined. */
export const env: undefined = undefined;

export default { Tensor, InferenceSession, env };
