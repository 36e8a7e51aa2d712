/**
 * Turns the engine's load progress events into what the progress bar shows: the fraction done and a line
 * with bytes, percent, speed and time left, saying whether bytes come over the network or from the cache.
 * Pure (the caller passes the clock), so it is unit-tested without a DOM.
 */
import type { LoadProgress } from '../worker/api';

/** Seconds of history the speed is averaged over. */
const WINDOW_S = 3;

/** Human-readable bytes with binary units. */
export function formatSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 2 ** 20) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 2 ** 30) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

/** A count like "260K", "135M" or "1.24B". */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(0)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)}K`;
  return String(n);
}

/** A duration like "45 s", "3 min 05 s" or "1 h 02 min". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.ceil(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** What the bar shows. */
export interface ProgressView {
  /** 0..1. */
  fraction: number;
  text: string;
  /** Bytes per second over the last few seconds, when known. */
  bytesPerSecond: number | null;
  /** Seconds left at that speed, when known. */
  secondsLeft: number | null;
}

/** Follows one load. Feed it every LoadProgress with the time it arrived (ms). */
export class LoadProgressTracker {
  private samples: Array<{ t: number; bytes: number }> = [];
  private startedAt: number | null = null;

  /** The view after event `p` at time `nowMs`. */
  update(p: LoadProgress, nowMs: number): ProgressView {
    this.startedAt ??= nowMs;
    switch (p.phase) {
      case 'config':
        return { fraction: 0, text: 'Reading config.json…', bytesPerSecond: null, secondsLeft: null };
      case 'tokenizer':
        return { fraction: 0, text: 'Loading the tokenizer…', bytesPerSecond: null, secondsLeft: null };
      case 'compile':
        return { fraction: 1, text: `Weights on the GPU (${formatSize(p.bytesTotal)}). Compiling GPU kernels…`, bytesPerSecond: null, secondsLeft: null };
      case 'ready':
        return { fraction: 1, text: `Ready in ${formatDuration((nowMs - this.startedAt) / 1000)}.`, bytesPerSecond: null, secondsLeft: null };
      case 'weights':
        return this.weights(p, nowMs);
    }
  }

  private weights(p: LoadProgress, nowMs: number): ProgressView {
    this.samples.push({ t: nowMs, bytes: p.bytesDone });
    while (this.samples.length > 2 && nowMs - this.samples[1].t > WINDOW_S * 1000) this.samples.shift();
    const first = this.samples[0];
    const dt = (nowMs - first.t) / 1000;
    const bytesPerSecond = dt >= 0.25 ? (p.bytesDone - first.bytes) / dt : null;
    const total = Math.max(p.bytesTotal, p.bytesDone);
    const fraction = total > 0 ? p.bytesDone / total : 0;
    const secondsLeft = bytesPerSecond && bytesPerSecond > 0 ? (total - p.bytesDone) / bytesPerSecond : null;
    const what =
      p.downloadedBytes === undefined ? 'Downloading and uploading to the GPU' : p.downloadedBytes > 0 ? 'Downloading and uploading to the GPU' : 'Uploading to the GPU from the cache';
    const cached = p.downloadedBytes !== undefined && p.downloadedBytes > 0 && p.downloadedBytes < p.bytesDone ? ` (${formatSize(p.bytesDone - p.downloadedBytes)} from the cache)` : '';
    const parts = [
      `${what}: ${p.file ?? 'weights'}`,
      `${formatSize(p.bytesDone)} / ${formatSize(total)} (${(fraction * 100).toFixed(fraction < 1 ? 1 : 0)}%)${cached}`,
      bytesPerSecond === null ? 'measuring speed…' : `${formatSize(bytesPerSecond)}/s`,
      secondsLeft === null ? '' : `${formatDuration(secondsLeft)} left`,
    ].filter(Boolean);
    return { fraction, text: parts.join(' · '), bytesPerSecond, secondsLeft };
  }
}
