/**
 * RoPE inverse frequencies, including Llama-3 frequency-dependent scaling.
 * Shared by the GPU path (uploaded once) and the CPU reference, so both rotate identically.
 */
import type { ModelConfig } from './config';

/** inv_freq[i] = theta^(-2i/d) for i in [0, d/2), scaled as transformers' `_compute_llama3_parameters` does. */
export function ropeInverseFrequencies(config: Pick<ModelConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float32Array {
  const half = config.headDim / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    out[i] = 1 / Math.pow(config.ropeTheta, (2 * i) / config.headDim);
  }
  const s = config.ropeScaling;
  if (!s) return out;
  const lowFreqWavelen = s.originalMaxPositions / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPositions / s.highFreqFactor;
  for (let i = 0; i < half; i++) {
    const wavelen = (2 * Math.PI) / out[i];
    if (wavelen > lowFreqWavelen) {
      out[i] = out[i] / s.factor;
    } else if (wavelen >= highFreqWavelen) {
      const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = (1 - smooth) * (out[i] / s.factor) + smooth * out[i];
    }
  }
  return out;
}
