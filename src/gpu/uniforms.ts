/**
 * Uniform parameters. Each kernel's static parameters are written once into a slot of a shared
 * uniform page when a plan is built; per-step values (the start position) live in one small
 * StepUniform buffer that every plan reads, so replaying a plan needs a single 16-byte write.
 */
import { BufferGroup, Usage } from './buffers';

/** Marks a uniform value to be stored as f32 (plain numbers are stored as u32). */
export class F32 {
  constructor(readonly value: number) {}
}

/** Mark a value as f32 in a uniform struct. */
export const f32 = (value: number): F32 => new F32(value);

/** Pack u32 / f32 fields in declaration order, padded to 16 bytes. */
export function packUniform(fields: Array<number | F32>): ArrayBuffer {
  const bytes = Math.max(16, Math.ceil((fields.length * 4) / 16) * 16);
  const buf = new ArrayBuffer(bytes);
  const view = new DataView(buf);
  fields.forEach((f, i) => {
    if (f instanceof F32) view.setFloat32(i * 4, f.value, true);
    else {
      if (!Number.isInteger(f) || f < 0 || f > 0xffffffff) throw new RangeError(`uniform field ${i} is not a u32: ${f}`);
      view.setUint32(i * 4, f, true);
    }
  });
  return buf;
}

const PAGE_BYTES = 64 * 1024;
const SLOT_ALIGN = 256;

/** A region of a uniform page, ready to bind. */
export interface UniformSlot {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

/** Sub-allocates 256-byte-aligned uniform slots from 64 KiB pages owned by one BufferGroup. */
export class UniformArena {
  private page: GPUBuffer | null = null;
  private used = PAGE_BYTES;

  constructor(
    private readonly device: GPUDevice,
    private readonly owner: BufferGroup,
  ) {}

  /**
   * Store a WGSL struct given by its named fields, in declaration order (u32 numbers, f32 via `f32()`);
   * padding fields may be left out: the struct is zero-padded to a multiple of 16 bytes.
   */
  struct(fields: Record<string, number | F32>): UniformSlot {
    return this.alloc(Object.values(fields));
  }

  /** Store a packed struct and return where it lives. */
  alloc(fields: Array<number | F32>): UniformSlot {
    const data = packUniform(fields);
    if (this.used + data.byteLength > PAGE_BYTES || !this.page) {
      this.page = this.owner.create('uniforms', PAGE_BYTES, Usage.UNIFORM | Usage.COPY_DST);
      this.used = 0;
    }
    const slot = { buffer: this.page, offset: this.used, size: data.byteLength };
    this.device.queue.writeBuffer(this.page, slot.offset, data);
    this.used += Math.ceil(data.byteLength / SLOT_ALIGN) * SLOT_ALIGN;
    return slot;
  }
}

/** Per-step values shared by every kernel: WGSL `struct Step { pos0: u32, kv_len: u32, tokens: u32, rope_pos0: u32 }` (lib/step.wgsl). */
export class StepUniform {
  readonly buffer: GPUBuffer;
  private readonly data = new Uint32Array(4);

  constructor(
    private readonly device: GPUDevice,
    owner: BufferGroup,
  ) {
    this.buffer = owner.create('step', 16, Usage.UNIFORM | Usage.COPY_DST);
  }

  /**
   * Set the cache slot of the first token of this step, how many tokens it holds, and the RoPE position of its
   * first token (the slot unless the cache evicted tokens in place).
   */
  write(pos0: number, tokens: number, ropePos0 = pos0): void {
    this.data[0] = pos0;
    this.data[1] = pos0 + tokens;
    this.data[2] = tokens;
    this.data[3] = ropePos0;
    this.device.queue.writeBuffer(this.buffer, 0, this.data);
  }

  /**
   * Write the Step values of `steps` one-token steps from cache slot pos0 (RoPE position ropePos0) into `ring`,
   * StepUniform.BYTES apart, for copying into this buffer step by step inside one command buffer.
   */
  writeOneTokenSteps(ring: GPUBuffer, pos0: number, steps: number, ropePos0 = pos0): void {
    if (this.ringData.length < steps * 4) this.ringData = new Uint32Array(steps * 4);
    const data = this.ringData;
    for (let i = 0; i < steps; i++) {
      data[4 * i] = pos0 + i;
      data[4 * i + 1] = pos0 + i + 1;
      data[4 * i + 2] = 1;
      data[4 * i + 3] = ropePos0 + i;
    }
    this.device.queue.writeBuffer(ring, 0, data, 0, steps * 4);
  }

  /** Scratch for writeOneTokenSteps, kept between batches (grown to the largest batch). */
  private ringData = new Uint32Array(0);

  /** Bytes of one Step. */
  static readonly BYTES = 16;
}
