/**
 * The chat's words for what the engine did to the cache (ContextEvents) and for mode switches.
 */
import type { ContextEvent } from '../../worker/api';
import { formatBytes } from '../dom';

/** A notice for an escalation or a window change; `repeats` sums the slides of one reply into one notice. */
export function describeContextEvent(e: ContextEvent, repeats?: { times: number; dropped: number }): string {
  if (e.kind === 'escalate') {
    return (
      `Memory budget: this turn needs up to ${e.neededTokens} tokens of KV cache, more than ${e.fromMode} fits in ${formatBytes(e.budgetBytes)}. ` +
      `Switched to ${e.toMode}, which holds ${e.limitTokens} tokens there. The conversation is kept.`
    );
  }
  const why =
    e.reason === 'budget'
      ? `The KV cache reached its memory budget (${e.limitTokens} tokens in this mode)`
      : `The conversation is longer than the model's context (${e.limitTokens} tokens)`;
  const where = e.at === 'prompt' ? 'before this reply' : 'during this reply';
  const again = repeats && repeats.times > 1 ? ` This happened ${repeats.times} times during this reply (${repeats.dropped} tokens dropped in all).` : '';
  return (
    `${why} ${where}: the cache now keeps the first ${e.sinkTokens} tokens (attention sinks) and the latest ${e.keptTokens - e.sinkTokens}; ` +
    `${e.droppedTokens} tokens in between were dropped from the cache. The transcript still shows everything, but the model no longer sees that part.${again}`
  );
}

/** A notice for a mode switch mid-chat. */
export function describeModeSwitch(from: string, to: string, bytesBefore: number, bytesAfter: number, tokens: number): string {
  if (tokens === 0) return `KV cache mode is now ${to}.`;
  return `KV cache switched from ${from} to ${to}: ${formatBytes(bytesBefore)} → ${formatBytes(bytesAfter)} for the ${tokens} cached tokens. The conversation is kept.`;
}
