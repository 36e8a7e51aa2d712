/**
 * One reply as a stream of pieces: each generated token's text with the cache statistics after it and the
 * context events (escalations, evictions) since the previous piece, then the engine's GenerateResult.
 * The engine runs one generation at a time, so replies wait their turn on a lock. A signal, a `return()` on
 * the iterator (a consumer that stops reading) or an error ends the engine's generation at the next token.
 */
import type { ChatMessage, ContextEvent, EngineStats, GenerateParams, GenerateResult, TokenEvent } from '../worker/api';
import type { Backend } from './backend';

/** What a reply yields. */
export type ReplyPiece =
  | { kind: 'token'; token: TokenEvent; events: ContextEvent[] }
  | { kind: 'done'; result: GenerateResult; stats: EngineStats; events: ContextEvent[]; firstTokenMs: number; totalMs: number };

/** A FIFO of values pushed from callbacks and read with `for await`. */
class AsyncQueue<T> {
  private items: T[] = [];
  private waiting: ((v: IteratorResult<T>) => void) | null = null;
  private failed: { err: unknown } | null = null;
  private ended = false;
  private fail_: ((err: unknown) => void) | null = null;

  push(item: T): void {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = this.fail_ = null;
      w({ value: item, done: false });
    } else this.items.push(item);
  }
  fail(err: unknown): void {
    this.failed = { err };
    if (this.fail_) {
      const f = this.fail_;
      this.waiting = this.fail_ = null;
      f(err);
    }
  }
  end(): void {
    this.ended = true;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = this.fail_ = null;
      w({ value: undefined, done: true });
    }
  }
  next(): Promise<IteratorResult<T>> {
    if (this.items.length) return Promise.resolve({ value: this.items.shift() as T, done: false });
    if (this.failed) return Promise.reject(this.failed.err);
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.fail_ = reject;
    });
  }
}

/** Serializes replies on one engine. */
export class ReplyLock {
  private tail: Promise<void> = Promise.resolve();
  private holders = 0;
  /** Whether a reply (or load) holds or waits for the lock. */
  get busy(): boolean {
    return this.holders > 0;
  }
  /** Resolves with a release function once the previous holders released. */
  acquire(): Promise<() => void> {
    let release!: () => void;
    this.holders++;
    const held = new Promise<void>((r) => (release = r));
    const ready = this.tail.then(() => () => {
      this.holders--;
      release();
    });
    this.tail = this.tail.then(() => held);
    return ready;
  }
}

type Item = { token: TokenEvent } | { event: ContextEvent } | { result: GenerateResult };

/** Generate a reply to `input` on `backend`, as pieces; `onResult` hears the engine's result when it comes. */
export async function* reply(
  backend: Backend,
  lock: ReplyLock,
  input: string | ChatMessage[],
  params: GenerateParams,
  signal?: AbortSignal,
  onResult?: (result: GenerateResult) => void,
): AsyncGenerator<ReplyPiece> {
  const release = await lock.acquire();
  const started = performance.now();
  let firstTokenMs = 0;
  let running: Promise<GenerateResult> | null = null;
  let finished = false;
  const stop = () => void backend.api.abort().catch(() => {});
  try {
    if (signal?.aborted) {
      const stats = await backend.api.stats();
      const result: GenerateResult = { text: '', tokenIds: [], promptTokens: 0, finishReason: 'abort', prefillMs: 0, decodeMs: 0, prefillTokensPerSecond: 0, decodeTokensPerSecond: 0 };
      finished = true;
      yield { kind: 'done', result, stats, events: [], firstTokenMs: 0, totalMs: 0 };
      return;
    }
    signal?.addEventListener('abort', stop);
    const queue = new AsyncQueue<Item>();
    const onToken = backend.callback((token: TokenEvent) => {
      if (signal?.aborted) stop(); // an abort sent before the engine started its generation
      queue.push({ token });
    });
    const onContext = backend.callback((event: ContextEvent) => queue.push({ event }));
    running = backend.api.generate(input, params, onToken, onContext);
    running.then(
      (result) => {
        queue.push({ result });
        queue.end();
      },
      (err) => queue.fail(err),
    );
    let events: ContextEvent[] = [];
    for (;;) {
      const next = await queue.next();
      if (next.done) break;
      const item = next.value;
      if ('event' in item) events.push(item.event);
      else if ('token' in item) {
        firstTokenMs ||= performance.now() - started;
        yield { kind: 'token', token: item.token, events };
        events = [];
      } else {
        finished = true;
        onResult?.(item.result);
        const stats = await backend.api.stats();
        yield { kind: 'done', result: item.result, stats, events, firstTokenMs, totalMs: performance.now() - started };
      }
    }
  } finally {
    signal?.removeEventListener('abort', stop);
    if (running && !finished) {
      // The consumer stopped reading (or a chunk handler threw): end the engine's generation before the next reply.
      stop();
      await running.catch(() => {});
    }
    release();
  }
}
