/**
 * A ModelSource over a local folder, for tests that need real model files without a server.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ModelFileMissingError } from '../../src/errors';
import type { ModelFileStream, ModelSource } from '../../src/model/source';

/** Files of one local directory, read with fs. */
export class DirSource implements ModelSource {
  readonly label: string;

  constructor(readonly dir: string) {
    this.label = `local folder ${dir}`;
  }

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  private missing(name: string): ModelFileMissingError {
    return new ModelFileMissingError(`${name} is not in ${this.label}.`);
  }

  async text(name: string): Promise<string> {
    try {
      return await fs.promises.readFile(this.file(name), 'utf8');
    } catch {
      throw this.missing(name);
    }
  }

  async stream(name: string): Promise<ModelFileStream> {
    let size: number;
    try {
      size = (await fs.promises.stat(this.file(name))).size;
    } catch {
      throw this.missing(name);
    }
    const body = Readable.toWeb(fs.createReadStream(this.file(name))) as unknown as ReadableStream<Uint8Array>;
    return { size, body };
  }

  async has(name: string): Promise<boolean> {
    try {
      return (await fs.promises.stat(this.file(name))).isFile();
    } catch {
      return false;
    }
  }
}
