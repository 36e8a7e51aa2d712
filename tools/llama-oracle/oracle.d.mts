// Types for oracle.mjs (TypeScript pairs a .mjs file with .d.mts, not .d.ts). Free of imports from
// node-llama-cpp so that the repo's type check works even before scripts/setup-oracle.sh has run.

/** ggml types llama.cpp accepts for its KV cache (quantized V needs flash attention). */
export type KvCacheType = "F32" | "F16" | "BF16" | "Q8_0" | "Q4_0" | "Q4_1" | "Q5_0" | "Q5_1" | "IQ4_NL";

export interface OracleOptions {
    /** Context size in tokens; defaults to the model's training context. Calls that do not fit throw. */
    contextSize?: number;
    /** Tokens per llama_decode call. Default min(512, contextSize). */
    batchSize?: number;
    /** CPU threads. Default 1 (ggml threads spin-wait; more threads than free cores is very slow). */
    threads?: number;
    /** KV cache element type for K and V. Default "F32". */
    kvCacheType?: KvCacheType;
    /** K cache type (node-llama-cpp experimentalKvCacheKeyType); overrides kvCacheType for K. */
    kvCacheKeyType?: KvCacheType;
    /** V cache type (experimentalKvCacheValueType); overrides kvCacheType for V. Quantized V needs flashAttention. */
    kvCacheValueType?: KvCacheType;
    /**
     * llama.cpp (this release) Hadamard-rotates 64-wide head slices before storing a quantized K or V
     * (attn_rot_k/attn_rot_v). false sets LLAMA_ATTN_ROT_DISABLE=1 while the context is created. Default true.
     */
    kvRotation?: boolean;
    /** Default false. */
    flashAttention?: boolean;
    /** llama.cpp log level. Default "error". */
    logLevel?: "disabled" | "fatal" | "error" | "warn" | "info" | "log" | "debug";
    /** Receives llama.cpp's log lines (up to logLevel) instead of the console. */
    logger?: (level: string, message: string) => void;
}

export interface TokenizeOptions {
    /** Parse special-token text such as "<s>" into special ids. Default false (plain characters). */
    special?: boolean;
    /** Prepend the BOS id. Default false. */
    addBos?: boolean;
}

export interface DetokenizeOptions {
    /** Render special/control tokens (e.g. "<s>", "</s>") as text. Default false: they render as "". */
    special?: boolean;
}

export interface GreedyOptions {
    /** Stop after an end-of-generation token (included in the output). Default false: exactly n ids. */
    stopAtEog?: boolean;
}

export interface Oracle {
    readonly modelPath: string;
    /** Number of token ids (length of tokenizer.ggml.tokens). */
    readonly vocabSize: number;
    /** Actual llama.cpp context size (may be rounded up from the requested one). */
    readonly contextSize: number;
    readonly bosId: number;
    readonly eosId: number;
    /**
     * Greedy continuation: n new ids after `promptIds`, which are fed as is (no BOS added).
     * Temperature 0 (llama.cpp greedy sampler), no repeat/DRY penalty; exact logit ties go to the lower id.
     */
    greedy(promptIds: number[], n: number, opts?: GreedyOptions): Promise<number[]>;
    /**
     * out[i] = argmax of the next-token logits after ids[0..i] (out.length === ids.length), evaluated in
     * batches with logits at every position. Same selection rule as greedy(): ties go to the lower id.
     * Accepts up to contextSize ids, but at exactly contextSize the last position is computed after a
     * node-llama-cpp context shift (it keeps one cell free); use at most contextSize - 1 for exact results.
     */
    teacherForcedTop1(ids: number[]): Promise<number[]>;
    /**
     * Row i (vocabSize floats at offset i * vocabSize) = llama.cpp's next-token distribution after ids[0..i] over
     * the whole vocabulary: the f32 softmax of the raw logits computed by node-llama-cpp's sampleToken (greedy
     * sampler, nothing dropped). log(row) equals the logits up to a per-row constant and f32 rounding; a
     * probability below ~1e-45 reads 0. Evaluated in batches of batchSize with logits at every position.
     * Needs ids.length < contextSize (node-llama-cpp keeps one cell free and would context-shift).
     */
    teacherForcedProbs(ids: number[]): Promise<Float32Array>;
    /** K and V cache types of the context, as node-llama-cpp reports them. */
    readonly kvCacheKeyType: string;
    readonly kvCacheValueType: string;
    readonly flashAttention: boolean | "auto";
    /** Tokens per llama_decode call (node-llama-cpp sets n_ubatch = n_batch). */
    readonly batchSize: number;
    /** llama.cpp release of the loaded binary. */
    readonly llamaCppRelease: string;
    /** llama_state_get_size (bytes): KV cells in use plus the output buffer; not the KV allocation. */
    stateSize(): number;
    /** llama.cpp tokenizer (SPM adds its leading-space dummy prefix); no BOS unless addBos. */
    tokenize(text: string, opts?: TokenizeOptions): number[];
    /** llama.cpp detokenizer; does not strip SPM's leading space ([403] -> " Once"). */
    detokenize(ids: number[], opts?: DetokenizeOptions): string;
    /** Frees the context, the model and the llama.cpp backend. */
    close(): Promise<void>;
}

/** Opens a GGUF (v2/v3; v1 is rejected) with llama.cpp's CPU backend. Calls on one oracle must not overlap. */
export function openOracle(ggufPath: string, options?: OracleOptions): Promise<Oracle>;
