/**
 * Reads exact byte counts from a ReadableStream, so weights can be uploaded tensor by tensor while a
 * file downloads, without holding the whole file in memory.
 */
import { ModelFormatError } from '../errors';

/** Sequential exact-size reads over a byte stream. */
export class ByteStreamReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private pending: Uint8Array = new Uint8Array(0);
  private consumed = 0;

  constructor(
    body: ReadableStream<Uint8Array>,
    private readonly fileName: string,
    private readonly onBytes: (n: number) => void = () => {},
  ) {
    this.reader = body.getReader();
  }

  /** Bytes handed out or skipped so far. */
  get position(): number {
    return this.consumed;
  }

  /** Exactly `n` bytes; throws ModelFormatError if the stream ends first (a truncated file). */
  async read(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (this.pending.byteLength === 0) {
        const { value, done } = await this.reader.read();
        if (done) {
          throw new ModelFormatError(
            `${this.fileName} ended after ${this.consumed + filled} bytes, before its header said it would: the file is truncated. ` +
              'Delete it from the cache and download it again.',
          );
        }
        this.pending = value;
        this.onBytes(value.byteLength);
      }
      const take = Math.min(n - filled, this.pending.byteLength);
      out.set(this.pending.subarray(0, take), filled);
      this.pending = this.pending.subarray(take);
      filled += take;
    }
    this.consumed += n;
    return out;
  }

  /** Discard `n` bytes. */
  async skip(n: number): Promise<void> {
    const chunk = 1 << 20;
    for (let left = n; left > 0; left -= chunk) await this.read(Math.min(chunk, left));
  }

  /** Stop reading and release the stream. */
  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => {});
  }
}
