/**
 * Stop strings over streamed text. Decoded text arrives a piece at a time, and a stop string can straddle
 * pieces, so the matcher holds back any tail that could still grow into a stop string and releases it once
 * it cannot. Pure.
 */

/** What one `push` lets through. */
export interface StopPushResult {
  /** Text that is safe to show now. When `stopped`, the text before the stop string. */
  emit: string;
  /** A stop string completed; generation should end and nothing after it is shown. */
  stopped: boolean;
  /** The stop string that matched, when `stopped`. */
  matched?: string;
}

/** Finds the first occurrence of any stop string in incrementally fed text. */
export class StopStringMatcher {
  private readonly stops: string[];
  private held = '';
  private done = false;

  /** Empty strings in `stops` are ignored. */
  constructor(stops: readonly string[] = []) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  /** Whether a stop string has already matched. */
  get stopped(): boolean {
    return this.done;
  }

  /** Feed newly decoded text; returns what may be shown now. After a match every push emits nothing. */
  push(text: string): StopPushResult {
    if (this.done) return { emit: '', stopped: true };
    if (this.stops.length === 0) return { emit: text, stopped: false };
    const buf = this.held + text;

    let at = -1;
    let matched = '';
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) {
        at = i;
        matched = s;
      }
    }
    if (at >= 0) {
      this.done = true;
      this.held = '';
      return { emit: buf.slice(0, at), stopped: true, matched };
    }

    // No stop string starts before the longest tail that is a proper prefix of one, so the rest is safe.
    const hold = this.longestPrefixTail(buf);
    this.held = buf.slice(buf.length - hold);
    return { emit: buf.slice(0, buf.length - hold), stopped: false };
  }

  /** Release the held-back tail at the end of generation (empty after a match). */
  flush(): string {
    const rest = this.done ? '' : this.held;
    this.held = '';
    return rest;
  }

  private longestPrefixTail(buf: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let len = Math.min(s.length - 1, buf.length); len > best; len--) {
        if (buf.endsWith(s.slice(0, len))) {
          best = len;
          break;
        }
      }
    }
    return best;
  }
}
