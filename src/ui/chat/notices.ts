/**
 * The chat's words for what the engine did to the cache (ContextEvents) and for mode switches.
 */
import type { ContextEvent } from '../../worker/api';
import { formatBytes } from '../dom';

/** A notice for an escalation, a step back down, or an eviction; `repeats` sums the evictions of one reply into one notice. */
export function describeContextEvent(e: ContextEvent, repeats?: { times: number; dropped: number }): string {
  if (e.kind === 'escalate') {
    return (
      `Memory budget: this turn needs up to ${e.neededTokens} tokens of KV cache, more than ${e.fromMode} fits in ${formatBytes(e.budgetBytes)}. ` +
      `Switched to ${e.toMode}, which holds ${e.limitTokens} tokens there. The conversation is kept.`
    );
  }
  if (e.kind === 'step-down') {
    const room = e.budgetBytes === null ? 'without a memory budget' : `in ${formatBytes(e.budgetBytes)}, where it holds ${e.limitTokens} tokens`;
    return `Memory budget: this turn's ${e.neededTokens} tokens fit ${e.toMode} again ${room}. Switched back from ${e.fromMode} to ${e.toMode}. The conversation is kept.`;
  }
  const why =
    e.reason === 'budget'
      ? `The KV cache reached its memory budget (${e.limitTokens} tokens in this mode)`
      : `The conversation is longer than the model's context (${e.limitTokens} tokens)`;
  const where = e.at === 'prompt' ? 'before this reply' : 'during this reply';
  const again = repeats && repeats.times > 1 ? ` This happened ${repeats.times} times during this reply (${repeats.dropped} tokens evicted in all).` : '';
  const others = e.keptTokens - e.sinkTokens - e.protectedKept;
  const guarded =
    e.protectedDropped > 0
      ? `; ${e.protectedDropped} protected tokens (system prompt, role markers) did not fit and went too`
      : e.protectedKept > 0
        ? `; system prompt and role markers kept (${e.protectedKept} tokens)`
        : '';
  const after = 'The transcript still shows everything, but the model no longer sees that part.';
  if (e.inPlace) {
    return (
      `${why} ${where}: evicted ${e.droppedTokens} tokens in place (${e.policy})${guarded}. The cache keeps the first ${e.sinkTokens} tokens ` +
      `(attention sinks) and ${others} ${e.policy === 'saliency' ? 'recent or most-attended' : 'recent'} ones at their positions; nothing was re-read. ${after}${again}`
    );
  }
  const because = e.reprefillBecause === 'positions' ? "the next position would pass the model's context" : 'this cache mode cannot evict (enough) in place';
  return (
    `${why} ${where}: the cache now keeps the first ${e.sinkTokens} tokens (attention sinks) and ${e.policy === 'saliency' ? `${others} recent or most-attended ones` : `the latest ${others}`}${guarded}; ` +
    `${e.droppedTokens} tokens in between were dropped from the cache (${e.policy}) and the kept ones re-read from scratch, as ${because}. ${after}${again}`
  );
}

/** A notice for a mode switch mid-chat. */
export function describeModeSwitch(from: string, to: string, bytesBefore: number, bytesAfter: number, tokens: number): string {
  if (tokens === 0) return `KV cache mode is now ${to}.`;
  return `KV cache switched from ${from} to ${to}: ${formatBytes(bytesBefore)} → ${formatBytes(bytesAfter)} for the ${tokens} cached tokens. The conversation is kept.`;
}
