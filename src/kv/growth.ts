/**
 * Capacity growth shared by the cache layouts: capacity rises in whole blocks as the chat grows (never
 * per token, never straight to the maximum context), so memory follows the conversation.
 */

/** The capacity to allocate so that `needed` tokens fit. Grows ×1.25 at least, in whole blocks, capped at `maxTokens` (rounded up to a block). */
export function grownCapacity(current: number, needed: number, blockTokens: number, maxTokens: number): number {
  const grown = Math.max(needed, Math.ceil(current * 1.25));
  const cap = Math.max(needed, Math.ceil(maxTokens / blockTokens) * blockTokens);
  return Math.min(Math.ceil(grown / blockTokens) * blockTokens, cap);
}

/** Copy `bytes` from each (source, destination, source offset, destination offset) on the GPU in one submission. */
export function copyOnGpu(device: GPUDevice, label: string, copies: Array<[GPUBuffer, GPUBuffer, number, number, number]>): void {
  const live = copies.filter(([, , , , bytes]) => bytes > 0);
  if (!live.length) return;
  const encoder = device.createCommandEncoder({ label });
  for (const [src, dst, srcOffset, dstOffset, bytes] of live) encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  device.queue.submit([encoder.finish()]);
}
