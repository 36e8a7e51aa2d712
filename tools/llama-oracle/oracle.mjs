// Independent reference ("oracle") for kvtab: llama.cpp itself, through node-llama-cpp's
// prebuilt linux-x64 CPU binary (@node-llama-cpp/linux-x64). Test tooling only, never app code.
// Install it with `bash scripts/setup-oracle.sh` (no GPU builds, no download, no source build).
//
// Numerics: llama.cpp CPU kernels, f32 weights as stored in the GGUF, KV cache in F32 by default
// (node-llama-cpp's default would be F16), flash attention off by default. llama.cpp picks a
// CPU-specific ggml backend (libggml-cpu-<arch>.so) at run time, so last-bit results can differ
// between machines; exact-id comparisons are only safe where the top-1 margin is not tiny.

// node-llama-cpp reads this at import time; set it before importing, so that nothing in this
// process ever tries to fetch llama.cpp sources (we also pass skipDownload/build: "never").
process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD ??= "true";

/** @type {typeof import("node-llama-cpp")} */
const nlc = await import("node-llama-cpp");
const { getLlama, LlamaLogLevel } = nlc;

/**
 * @typedef {object} OracleOptions
 * @property {number} [contextSize] Context size in tokens (llama.cpp may round it up to a multiple of 256).
 *   Defaults to the model's training context. Calls whose ids do not fit throw (no silent context shift).
 * @property {number} [batchSize] Tokens per llama_decode call. Defaults to min(512, contextSize).
 * @property {number} [threads] CPU threads for llama_decode. Default 1: ggml's worker threads spin-wait, and with
 *   node-llama-cpp's default (4 on this 2-core machine) a tiny model decodes ~1000x slower (0.8 ms vs ~700 ms a token).
 * @property {"F32" | "F16" | "Q8_0"} [kvCacheType] KV cache element type for K and V. Default "F32".
 * @property {boolean} [flashAttention] Default false.
 * @property {"disabled" | "fatal" | "error" | "warn" | "info" | "log" | "debug"} [logLevel] llama.cpp log level. Default "error".
 */

/**
 * @typedef {object} TokenizeOptions
 * @property {boolean} [special] Parse special-token text such as "<s>" into the special ids. Default false
 *   (the text "<s>" is then tokenized as plain characters).
 * @property {boolean} [addBos] Prepend the model's BOS id. Default false.
 */

/**
 * @typedef {object} DetokenizeOptions
 * @property {boolean} [special] Render special/control tokens (BOS "<s>", EOS "</s>") as their text. Default false:
 *   they render as "".
 */

/**
 * @typedef {object} GreedyOptions
 * @property {boolean} [stopAtEog] Stop after an end-of-generation token (EOS/EOT) and include it. Default false:
 *   exactly n ids are produced, decoding straight through EOS like a raw model loop.
 */

/**
 * @typedef {object} Oracle
 * @property {string} modelPath
 * @property {number} vocabSize Number of token ids (length of tokenizer.ggml.tokens).
 * @property {number} contextSize Actual context size of the llama.cpp context.
 * @property {number} bosId
 * @property {number} eosId
 * @property {(promptIds: number[], n: number, opts?: GreedyOptions) => Promise<number[]>} greedy
 *   Greedy (top-1) continuation of `promptIds`, given exactly as is (no BOS is added). Returns n new ids.
 * @property {(ids: number[]) => Promise<number[]>} teacherForcedTop1
 *   out[i] = argmax of the next-token logits after ids[0..i]; out.length === ids.length. Batched.
 * @property {(text: string, opts?: TokenizeOptions) => number[]} tokenize
 * @property {(ids: number[], opts?: DetokenizeOptions) => string} detokenize
 * @property {() => Promise<void>} close
 */

/**
 * Ties: both greedy() and teacherForcedTop1() select the token with llama.cpp's own greedy sampler
 * (llama_sampler_init_greedy, temperature 0, no top-k/top-p/min-p, no repeat/DRY penalty, no token bias).
 * node-llama-cpp fills the candidate array in ascending id order from the raw logits, and that sampler
 * only moves its pick on a strictly greater logit, so exact logit ties go to the LOWER id.
 *
 * @param {string} ggufPath path to a GGUF v2/v3 file (GGUF v1 is rejected by llama.cpp and node-llama-cpp).
 * @param {OracleOptions} [options]
 * @returns {Promise<Oracle>}
 */
export async function openOracle(ggufPath, options = {}) {
    const {
        contextSize,
        batchSize,
        threads = 1,
        kvCacheType = "F32",
        flashAttention = false,
        logLevel = "error",
    } = options;

    const llama = await getLlama({
        gpu: false, // CPU only: never probe or load CUDA/Vulkan/Metal
        build: "never", // never build llama.cpp from source; NoBinaryFoundError if the prebuilt is missing
        skipDownload: true, // never download llama.cpp sources
        usePrebuiltBinaries: true,
        progressLogs: false,
        logLevel: /** @type {any} */ (LlamaLogLevel[logLevel] ?? logLevel),
    });
    /** @type {import("node-llama-cpp").LlamaModel | undefined} */
    let model;
    /** @type {import("node-llama-cpp").LlamaContext | undefined} */
    let context;
    let vocabSize = 0;
    try {
        model = await llama.loadModel({ modelPath: ggufPath, gpuLayers: 0, useMmap: false });
        const tokenList = /** @type {any} */ (model.fileInfo.metadata)?.tokenizer?.ggml?.tokens;
        vocabSize = Array.isArray(tokenList) ? tokenList.length : 0;
        if (vocabSize === 0) throw new Error("oracle: tokenizer.ggml.tokens missing from the GGUF metadata");
        context = await model.createContext({
            contextSize: contextSize ?? model.trainContextSize,
            ...(batchSize != null ? { batchSize } : {}),
            threads: { ideal: threads, min: threads },
            flashAttention,
            experimentalKvCacheKeyType: kvCacheType,
            experimentalKvCacheValueType: kvCacheType,
            sequences: 1,
        });
    } catch (e) {
        await context?.dispose().catch(() => {});
        await model?.dispose().catch(() => {});
        await llama.dispose().catch(() => {});
        throw e;
    }
    const m = model;
    const ctx = context;
    // checkIds() keeps every call within the context, so node-llama-cpp never context-shifts.
    const seq = ctx.getSequence();

    /** Greedy sampling options for node-llama-cpp: temperature 0 selects llama.cpp's greedy sampler. */
    const greedyOpts = { temperature: 0 };
    /**
     * @param {number} t
     * @param {boolean} next whether to sample the next token after this one
     * @returns {import("node-llama-cpp").ControlledEvaluateInputItem}
     */
    const item = (t, next) => {
        const tok = /** @type {import("node-llama-cpp").Token} */ (t);
        return next ? [tok, { generateNext: { token: true, options: greedyOpts } }] : tok;
    };

    /** @param {number[]} ids @param {number} extra */
    function checkIds(ids, extra) {
        if (!Array.isArray(ids) || ids.length === 0) throw new Error("oracle: ids must be a non-empty array");
        for (const t of ids) {
            if (!Number.isInteger(t) || t < 0 || t >= vocabSize)
                throw new Error(`oracle: invalid token id ${t}`);
        }
        if (ids.length + extra > seq.contextSize)
            throw new Error(`oracle: ${ids.length + extra} tokens do not fit the context (${seq.contextSize})`);
    }

    let busy = false;
    /** @template T @param {() => Promise<T>} fn @returns {Promise<T>} */
    async function exclusive(fn) {
        if (busy) throw new Error("oracle: calls must not overlap (await each call)");
        busy = true;
        try {
            await seq.clearHistory();
            return await fn();
        } finally {
            busy = false;
        }
    }

    /** @param {import("node-llama-cpp").ControlledEvaluateIndexOutput | undefined} r @param {number} i */
    function tokenOf(r, i) {
        const t = r?.next?.token;
        if (t == null) throw new Error(`oracle: llama.cpp produced no token at input index ${i}`);
        return t;
    }

    return {
        modelPath: ggufPath,
        vocabSize,
        contextSize: seq.contextSize,
        bosId: /** @type {number} */ (m.tokens.bos ?? -1),
        eosId: /** @type {number} */ (m.tokens.eos ?? -1),

        async greedy(promptIds, n, opts = {}) {
            if (!Number.isInteger(n) || n < 0) throw new Error("oracle: n must be a non-negative integer");
            checkIds(promptIds, n);
            if (n === 0) return [];
            return exclusive(async () => {
                /** @type {number[]} */
                const out = [];
                /** @type {import("node-llama-cpp").ControlledEvaluateInputItem[]} */
                let input = promptIds.map((t, i) => item(t, i === promptIds.length - 1));
                while (out.length < n) {
                    const res = await seq.controlledEvaluate(input);
                    const t = tokenOf(res[input.length - 1], input.length - 1);
                    out.push(t);
                    if (opts.stopAtEog && m.isEogToken(t)) break;
                    input = [item(t, true)];
                }
                return out;
            });
        },

        async teacherForcedTop1(ids) {
            checkIds(ids, 0);
            return exclusive(async () => {
                // One controlledEvaluate over the whole sequence: node-llama-cpp splits it into
                // llama_decode batches of batchSize tokens with logits requested at every position.
                const res = await seq.controlledEvaluate(ids.map((t) => item(t, true)));
                return ids.map((_, i) => tokenOf(res[i], i));
            });
        },

        tokenize(text, opts = {}) {
            const ids = m.tokenize(text, opts.special ?? false);
            return opts.addBos && m.tokens.bos != null ? [m.tokens.bos, ...ids] : [...ids];
        },

        detokenize(ids, opts = {}) {
            return m.detokenize(/** @type {any} */ (ids), opts.special ?? false);
        },

        async close() {
            await ctx.dispose();
            await m.dispose();
            await llama.dispose();
        },
    };
}
