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

/** @param {unknown} t a GgmlType enum value (node-llama-cpp reports the context's KV types as numbers) */
function ggmlTypeName(t) {
    return typeof t === "number" ? (/** @type {Record<number, string>} */ (/** @type {unknown} */ (nlc.GgmlType))[t] ?? String(t)) : String(t);
}

/**
 * @typedef {object} OracleOptions
 * @property {number} [contextSize] Context size in tokens (llama.cpp may round it up to a multiple of 256).
 *   Defaults to the model's training context. Calls whose ids do not fit throw (no silent context shift).
 * @property {number} [batchSize] Tokens per llama_decode call. Defaults to min(512, contextSize).
 * @property {number} [threads] CPU threads for llama_decode. Default 1: ggml's worker threads spin-wait, and with
 *   node-llama-cpp's default (4 on this 2-core machine) a tiny model decodes ~1000x slower (0.8 ms vs ~700 ms a token).
 * @property {KvCacheType} [kvCacheType] KV cache element type for K and V. Default "F32".
 * @property {KvCacheType} [kvCacheKeyType] K cache element type; overrides kvCacheType for K.
 * @property {KvCacheType} [kvCacheValueType] V cache element type; overrides kvCacheType for V. A quantized V needs
 *   flashAttention: true (llama.cpp refuses the context otherwise).
 * @property {boolean} [kvRotation] llama.cpp (this release) rotates each 64-wide slice of a head by a Hadamard
 *   matrix before it stores a quantized K or V (attn_rot_k / attn_rot_v, llama.cpp PR 21038), and rotates back.
 *   false sets LLAMA_ATTN_ROT_DISABLE=1 while the context is created, as older releases stored K/V unrotated.
 *   Default true (llama.cpp's default; no effect on F32/F16/BF16 caches).
 * @property {boolean} [flashAttention] Default false.
 * @property {"disabled" | "fatal" | "error" | "warn" | "info" | "log" | "debug"} [logLevel] llama.cpp log level. Default "error".
 * @property {(level: string, message: string) => void} [logger] Receives llama.cpp's log lines (up to logLevel)
 *   instead of the console, e.g. to read the "llama_kv_cache: size = …" line at logLevel "info".
 */

/** @typedef {"F32" | "F16" | "BF16" | "Q8_0" | "Q4_0" | "Q4_1" | "Q5_0" | "Q5_1" | "IQ4_NL"} KvCacheType */

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
 * @property {(ids: number[]) => Promise<Float32Array>} teacherForcedProbs
 *   ids.length must be below contextSize (node-llama-cpp keeps one cell free; see checkIds).
 *   Row i (vocabSize floats at i * vocabSize) = llama.cpp's next-token distribution after ids[0..i], over the
 *   whole vocabulary: the f32 softmax of the raw logits that node-llama-cpp's sampleToken computes (greedy sampler,
 *   no candidate is dropped), so log(row) equals the logits up to a per-row constant and f32 rounding. Batched.
 * @property {string} kvCacheKeyType K cache type of the context, as node-llama-cpp reports it.
 * @property {string} kvCacheValueType V cache type of the context.
 * @property {boolean | "auto"} flashAttention
 * @property {number} batchSize Tokens per llama_decode call (node-llama-cpp sets n_ubatch = n_batch).
 * @property {string} llamaCppRelease llama.cpp release of the binary.
 * @property {() => number} stateSize llama_state_get_size of the context (bytes): the serialized state, i.e. the
 *   KV cells in use plus the output (logits) buffer; not the KV allocation.
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
        kvCacheKeyType = kvCacheType,
        kvCacheValueType = kvCacheType,
        kvRotation = true,
        flashAttention = false,
        logLevel = "error",
        logger,
    } = options;

    const llama = await getLlama({
        gpu: false, // CPU only: never probe or load CUDA/Vulkan/Metal
        build: "never", // never build llama.cpp from source; NoBinaryFoundError if the prebuilt is missing
        skipDownload: true, // never download llama.cpp sources
        usePrebuiltBinaries: true,
        progressLogs: false,
        logLevel: /** @type {any} */ (LlamaLogLevel[logLevel] ?? logLevel),
        ...(logger ? { logger: /** @type {any} */ (logger) } : {}),
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
        // llama.cpp reads LLAMA_ATTN_ROT_DISABLE with getenv() when it builds the KV cache (Node's process.env
        // writes through to the C environment); restore it right after.
        const rotEnv = process.env.LLAMA_ATTN_ROT_DISABLE;
        if (!kvRotation) process.env.LLAMA_ATTN_ROT_DISABLE = "1";
        context = await model.createContext({
            contextSize: contextSize ?? model.trainContextSize,
            ...(batchSize != null ? { batchSize } : {}),
            threads: { ideal: threads, min: threads },
            flashAttention,
            experimentalKvCacheKeyType: kvCacheKeyType,
            experimentalKvCacheValueType: kvCacheValueType,
            sequences: 1,
        }).finally(() => {
            if (rotEnv === undefined) delete process.env.LLAMA_ATTN_ROT_DISABLE;
            else process.env.LLAMA_ATTN_ROT_DISABLE = rotEnv;
        });
    } catch (e) {
        await context?.dispose().catch(() => {});
        await model?.dispose().catch(() => {});
        await llama.dispose().catch(() => {});
        throw e;
    }
    const m = model;
    const ctx = context;
    // node-llama-cpp keeps one cell free: a sequence holds at most contextSize - 1 evaluated tokens, and the
    // next one first context-shifts (erases ~10% after BOS). checkIds(ids, extra) rejects more than contextSize
    // ids + extra; greedy() evaluates prompt + n - 1 tokens, so it never shifts, and teacherForcedProbs()
    // passes extra = 1. teacherForcedTop1() keeps its old bound (ids.length <= contextSize, relied on by the
    // stories260k agreement runs with 512 ids in a 512 context): at exactly contextSize ids its LAST position
    // is computed after a shift.
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

        async teacherForcedProbs(ids) {
            checkIds(ids, 1);
            return exclusive(async () => {
                /** @type {import("node-llama-cpp").ControlledEvaluateInputItem[]} */
                const input = ids.map((t) => [
                    /** @type {import("node-llama-cpp").Token} */ (t),
                    { generateNext: { probabilities: true, options: greedyOpts } },
                ]);
                const res = await seq.controlledEvaluate(input);
                const out = new Float32Array(ids.length * vocabSize);
                for (let i = 0; i < ids.length; i++) {
                    const probs = res[i]?.next?.probabilities;
                    if (probs == null || probs.size !== vocabSize)
                        throw new Error(`oracle: llama.cpp gave ${probs?.size ?? 0} probabilities (not ${vocabSize}) at input index ${i}`);
                    for (const [t, p] of probs) out[i * vocabSize + t] = p;
                }
                return out;
            });
        },

        kvCacheKeyType: ggmlTypeName(ctx.kvCacheKeyType),
        kvCacheValueType: ggmlTypeName(ctx.kvCacheValueType),
        flashAttention: ctx.flashAttention,
        batchSize: ctx.batchSize,
        llamaCppRelease: llama.llamaCppRelease.release,
        stateSize: () => ctx.stateSize,

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
