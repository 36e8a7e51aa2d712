#!/usr/bin/env node
// Checks llama.cpp (via ./oracle.mjs) against the stories260k golden ids in shared/models/README.md:
// greedy continuation must match exactly, and teacher-forced top-1 over prompt+golden must agree
// with the golden ids at every continuation position.
//
//   node tools/llama-oracle/check-golden.mjs [--models DIR]
//
// Exit 0 when every check on the GGUF v3 file passes. The GGUF v1 file is tried too; llama.cpp dropped
// GGUF v1 support, so "not loadable" is reported and is not a failure (a v1 load that gives wrong ids is).
import path from "node:path";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { openOracle } from "./oracle.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const argi = process.argv.indexOf("--models");
const modelsDir =
    argi > 0 ? path.resolve(process.argv[argi + 1]) : path.resolve(here, "../../../shared/models/stories260k");

/** @type {{ name: string, prompt: number[], golden: number[] }[]} */
const CASES = [
    {
        name: '"Once upon a time" +60',
        prompt: [1, 403, 407, 261, 378],
        golden: [
            432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322,
            265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267,
            337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13, 438, 310,
        ],
    },
    {
        name: '"Tom and Sue went to the" +40',
        prompt: [1, 274, 287, 269, 301, 425, 411, 263, 377, 267, 265],
        golden: [
            282, 295, 433, 426, 342, 394, 261, 370, 268, 414, 444, 335, 261, 370, 268, 414, 444, 426, 342, 391, 266, 267,
            337, 335, 312, 426, 342, 391, 266, 267, 337, 335, 265, 268, 414, 444, 426, 342, 391, 266,
        ],
    },
];

/** @param {number[]} a @param {number[]} b */
function firstDiff(a, b) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
    return -1;
}

let passed = 0;
let failed = 0;
/** @param {boolean} ok @param {string} msg */
function report(ok, msg) {
    if (ok) passed++;
    else failed++;
    console.log(`${ok ? "ok  " : "FAIL"} ${msg}`);
}

/** @param {string} file @param {boolean} required */
async function checkFile(file, required) {
    const p = path.join(modelsDir, file);
    if (!existsSync(p)) {
        report(!required, `${file}: missing at ${p}`);
        return;
    }
    let t = performance.now();
    let oracle;
    try {
        oracle = await openOracle(p, { contextSize: 512 });
    } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        if (required) report(false, `${file}: failed to load: ${msg}`);
        else console.log(`info ${file}: not loadable by llama.cpp/node-llama-cpp 3.21.1: ${msg}`);
        return;
    }
    console.log(`info ${file}: opened in ${(performance.now() - t).toFixed(0)} ms, vocab ${oracle.vocabSize}, ctx ${oracle.contextSize}`);
    try {
        for (const { name, prompt, golden } of CASES) {
            t = performance.now();
            const got = await oracle.greedy(prompt, golden.length);
            const gMs = performance.now() - t;
            const d = firstDiff(got, golden);
            report(
                d < 0,
                `${file} ${name} greedy: ${d < 0 ? "exact" : `differs at ${d}: got ${got[d]}, want ${golden[d]}`}` +
                    ` (${gMs.toFixed(1)} ms, ${(gMs / golden.length).toFixed(2)} ms/token)`,
            );

            const seq = [...prompt, ...golden];
            t = performance.now();
            const top1 = await oracle.teacherForcedTop1(seq);
            const tMs = performance.now() - t;
            // top1[i] predicts seq[i+1]; continuation positions are i = prompt.length-1 .. seq.length-2.
            const pred = top1.slice(prompt.length - 1, seq.length - 1);
            const bad = pred.flatMap((x, j) => (x === golden[j] ? [] : [j]));
            report(
                top1.length === seq.length && bad.length === 0,
                `${file} ${name} teacher-forced top-1: ${golden.length - bad.length}/${golden.length} agree` +
                    (bad.length ? ` (first mismatch at ${bad[0]}: ${pred[bad[0]]} vs ${golden[bad[0]]})` : "") +
                    ` (${tMs.toFixed(1)} ms for ${seq.length} tokens, ${(tMs / seq.length).toFixed(3)} ms/token)`,
            );
        }
        const text = oracle.detokenize(CASES[0].golden);
        report(
            text.startsWith(", there was a little girl named Lily.") && text.endsWith("too high.\nLily"),
            `${file} detokenize: ${JSON.stringify(text.slice(0, 40))}...`,
        );
        const ids = oracle.tokenize("Once upon a time", { addBos: true });
        report(firstDiff(ids, CASES[0].prompt) < 0, `${file} tokenize("Once upon a time", {addBos}) = [${ids}]`);
    } finally {
        await oracle.close();
    }
}

const t0 = performance.now();
await checkFile("stories260k-f32-v3.gguf", true);
await checkFile("stories260k-f32-ggufv1.gguf", false);
console.log(`info total ${((performance.now() - t0) / 1000).toFixed(2)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
