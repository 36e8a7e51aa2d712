/**
 * What the KV cache holds, in terms of the chat's token stream: every token id fed since the cache was last
 * empty (position p = the p-th of them, its RoPE position), which positions are still held (one per cache
 * slot, ascending: eviction in place drops slots but never renumbers positions) and which are protected
 * (system prompt, role markers). The engine keeps it in step with the cache; pure, so it is tested in Node.
 */
import type { KvPositions } from '../worker/api';

/** A half-open range of positions [start, end). */
export type PositionRange = [number, number];

/** The cache's contents, position by position. */
export class CacheContents {
  /** ids[p]: the token fed at position p. */
  private readonly fed: number[] = [];
  /** Position of each held slot, ascending. */
  private readonly slots: number[] = [];
  /** Protected positions, also for positions not fed yet (a prompt is marked before its prefill). */
  private readonly guarded = new Set<number>();

  /** Every token id fed since the cache was last empty. */
  get ids(): readonly number[] {
    return this.fed;
  }

  /** Slots held. */
  get held(): number {
    return this.slots.length;
  }

  /** The position of the next token. */
  get nextPosition(): number {
    return this.fed.length;
  }

  /** The position each held slot holds. */
  get positions(): readonly number[] {
    return this.slots;
  }

  /** Whether this bookkeeping describes a cache of `length` slots whose next position is `nextPosition`. */
  matches(cache: { length: number; nextPosition: number }): boolean {
    return cache.length === this.slots.length && cache.nextPosition === this.fed.length;
  }

  /** An independent copy (what a lost cache held, kept to refill its replacement). */
  clone(): CacheContents {
    const copy = new CacheContents();
    copy.fed.push(...this.fed);
    copy.slots.push(...this.slots);
    for (const p of this.guarded) copy.guarded.add(p);
    return copy;
  }

  /** Tokens appended to the cache, at the next positions. */
  push(ids: readonly number[]): void {
    for (const id of ids) {
      this.slots.push(this.fed.length);
      this.fed.push(id);
    }
  }

  /** Forget everything (the cache was reset). */
  clear(): void {
    this.fed.length = 0;
    this.slots.length = 0;
    this.guarded.clear();
  }

  /** Slots that hold positions below `position`. */
  slotsBelow(position: number): number {
    let n = this.slots.length;
    while (n > 0 && this.slots[n - 1] >= position) n--;
    return n;
  }

  /** Forget positions from `position` on (the cache was cut to slotsBelow(position) slots, next position `position`). */
  cut(position: number): void {
    this.slots.length = this.slotsBelow(position);
    this.fed.length = Math.min(this.fed.length, position);
    for (const p of this.guarded) if (p >= position) this.guarded.delete(p);
  }

  /** Forget the last `n` tokens fed (queued decode steps past the stop). */
  dropLast(n: number): void {
    this.cut(this.fed.length - n);
  }

  /** Mark the positions of `ranges` protected (they may be fed later). */
  protect(ranges: readonly PositionRange[]): void {
    for (const [start, end] of ranges) for (let p = start; p < end; p++) this.guarded.add(p);
  }

  /** Whether position p is protected. */
  isProtected(position: number): boolean {
    return this.guarded.has(position);
  }

  /** After an eviction in place that kept the slots `keep` (ascending slot indices). */
  keepSlots(keep: readonly number[]): void {
    const positions = keep.map((i) => this.slots[i]);
    this.slots.length = 0;
    this.slots.push(...positions);
  }

  /** The ids the held slots hold, in slot order. */
  heldIds(): number[] {
    return this.slots.map((p) => this.fed[p]);
  }

  /** The runs of consecutive held positions, as [start, end) ranges with their first slot. */
  runs(): Array<{ slot: number; start: number; end: number }> {
    const out: Array<{ slot: number; start: number; end: number }> = [];
    this.slots.forEach((p, slot) => {
      const last = out[out.length - 1];
      if (last && last.end === p) last.end++;
      else out.push({ slot, start: p, end: p + 1 });
    });
    return out;
  }

  /** What the engine reports in EngineStats.kvPositions. */
  report(): KvPositions {
    const protectedPositions = [...this.guarded].sort((a, b) => a - b);
    return {
      nextPosition: this.fed.length,
      held: this.runs().map((r): PositionRange => [r.start, r.end]),
      protected: toRanges(protectedPositions),
      protectedHeld: this.slots.reduce((n, p) => n + (this.guarded.has(p) ? 1 : 0), 0),
    };
  }
}

/** Ascending positions as [start, end) ranges. */
export function toRanges(positions: readonly number[]): PositionRange[] {
  const out: PositionRange[] = [];
  for (const p of positions) {
    const last = out[out.length - 1];
    if (last && last[1] === p) last[1]++;
    else out.push([p, p + 1]);
  }
  return out;
}
