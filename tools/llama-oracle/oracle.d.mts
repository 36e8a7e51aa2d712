// Types for oracle.mjs (TypeScript pairs a .mjs file with .d.mts, not .d.ts). Free of imports from
// node-llama-cpp so that the repo's type check works even before scripts/setup-oracle.sh has run.

export interface OracleOptions {
    /** Context size in tokens; defaults to the model's training context. Calls that do not fit throw. */
    contextSize?: number;
    /** Tokens per llama_decode call. Default min(512, contextSize). */
    batchSize?: number;
    /** CPU threads. Default 1 (ggml threads spin-wait; more threads than free cores is very slow). */
    threads?: number;
    /** KV cache element type for K and V. Default "F32". */
    kvCacheType?: "F32" | "F16" | "Q8_0";
    /** Default false. */
    flashAttention?: boolean;
    /** llama.cpp log level. Default "error". */
    logLevel?: "disabled" | "fatal" | "error" | "warn" | "info" | "log" | "debug";
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
     */
    teacherForcedTop1(ids: number[]): Promise<number[]>;
    /** llama.cpp tokenizer (SPM adds its leading-space dummy prefix); no BOS unless addBos. */
    tokenize(text: string, opts?: TokenizeOptions): number[];
    /** llama.cpp detokenizer; does not strip SPM's leading space ([403] -> " Once"). */
    detokenize(ids: number[], opts?: DetokenizeOptions): string;
    /** Frees the context, the model and the llama.cpp backend. */
    close(): Promise<void>;
}

/** Opens a GGUF (v2/v3; v1 is rejected) with llama.cpp's CPU backend. Calls on one oracle must not overlap. */
export function openOracle(ggufPath: string, options?: OracleOptions): Promise<Oracle>;
