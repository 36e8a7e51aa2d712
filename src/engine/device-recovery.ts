/**
 * Recovery from an unexpected GPU device loss (driver reset, GPU process crash, the test hook). What the engine
 * needs to come back is captured the moment the loss is heard, before the lost model is freed: the model's
 * source and load options (a cached source reads its weights from IndexedDB again, with no download), the
 * cache's mode and how it was built, and a copy of which chat tokens it held at which positions. The engine
 * then waits for the operation in flight to end (a reply stops with DeviceLostError, its text so far kept),
 * reloads onto a fresh device and prefills the held tokens into a cache of the same mode, so the conversation
 * continues where it was; listeners hear the outcome, which the chat shows as a note.
 */
import { DeviceLostError } from '../errors';
import type { ModelSource, ModelSourceSpec } from '../model/source';
import type { DeviceRecoveryEvent, KvModeSpec, LoadOptions } from '../worker/api';
import type { CacheRequest } from './cache-builder';
import type { CacheContents } from './cache-contents';

/** The chat note of a recovery that worked. */
export const RECOVERED_TEXT = 'The GPU was reset; the model was reloaded and the conversation restored.';

/** Everything a reload after a loss needs, captured when the loss is heard. */
export interface RecoveryPlan {
  /** What the model was loaded from (a cached hub spec reads IndexedDB, not the network). */
  spec: ModelSourceSpec | ModelSource;
  /** The load's options (its GGUF file included). */
  options: LoadOptions;
  /** The cache as it was: mode, capacity cap, saliency, reserved. */
  cache: CacheRequest;
  /** The mode the user chose (an escalated cache steps back down to it). */
  userMode: KvModeSpec;
  /** A copy of what the lost cache held. */
  contents: CacheContents;
}

/** How long a failed GPU call waits for the device's loss to be reported before it is taken as its own error. */
const LOSS_REPORT_WAIT_MS = 250;

/** The error a reply in flight ends with when the device is lost under it. */
export function lostDuringReply(cause: DeviceLostError): DeviceLostError {
  return new DeviceLostError(`${cause.message.replace(/ Your chat is kept.*$/, '')} The reply stopped here and its text so far is kept; the model is being reloaded.`);
}

/** Wait until `lost` resolves or a short time passes (a failed map or submit can be heard before the loss itself). */
export async function awaitLossReport(lost: Promise<unknown>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([lost, new Promise((resolve) => (timer = setTimeout(resolve, LOSS_REPORT_WAIT_MS)))]);
  clearTimeout(timer);
}

/** Resolve once `idle()` holds, checking every few milliseconds. */
export async function whenIdle(idle: () => boolean): Promise<void> {
  while (!idle()) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** One recovery at a time, and who hears how it went. */
export class DeviceRecovery {
  private readonly listeners = new Set<(e: DeviceRecoveryEvent) => void>();
  private running: Promise<void> | null = null;
  private stopped = false;

  /** Whether a recovery is under way. */
  get active(): boolean {
    return this.running !== null;
  }

  /** Whether the user unloaded since the last recovery started (it then reloads nothing and reports nothing). */
  get cancelled(): boolean {
    return this.stopped;
  }

  /** Hear each recovery's outcome; returns an unsubscribe function. */
  watch(listener: (e: DeviceRecoveryEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Run `work` (reload and restore, resolving to the tokens restored) and report how it went. */
  start(work: () => Promise<{ tokensRestored: number; kvMode: string }>): void {
    this.stopped = false;
    const run = (async () => {
      let event: DeviceRecoveryEvent;
      try {
        const done = await work();
        event = { kind: 'recovered', message: RECOVERED_TEXT, ...done };
      } catch (err) {
        event = { kind: 'failed', message: `The GPU was reset and the model could not be reloaded: ${(err as Error).message ?? String(err)} Load it again in the Model panel; your chat is kept.` };
      }
      if (this.stopped) return;
      for (const l of this.listeners) {
        try {
          l(event);
        } catch (err) {
          console.warn('A device recovery listener failed:', err);
        }
      }
    })();
    this.running = run.finally(() => {
      if (this.running === tracked) this.running = null;
    });
    const tracked = this.running;
  }

  /** Resolves when no recovery runs (at once when none does). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  /** The user unloaded: a recovery under way reloads nothing (unless already loading) and reports nothing. */
  cancel(): void {
    this.stopped = true;
  }
}
