/**
 * The progress line: bytes, percent, speed over a sliding window, time left, and whether bytes come from
 * the network or the cache.
 */
import { describe, expect, it } from 'vitest';
import { formatCount, formatDuration, formatSize, LoadProgressTracker } from '../../src/ui/load-progress';

const MiB = 2 ** 20;

describe('LoadProgressTracker', () => {
  it('reports percent, speed and time left during a download', () => {
    const t = new LoadProgressTracker();
    t.update({ phase: 'config', bytesDone: 0, bytesTotal: 0 }, 0);
    const start = t.update({ phase: 'weights', bytesDone: 0, bytesTotal: 100 * MiB, file: 'model.safetensors', downloadedBytes: 0 }, 1000);
    expect(start.fraction).toBe(0);
    expect(start.bytesPerSecond).toBeNull();
    const v = t.update({ phase: 'weights', bytesDone: 20 * MiB, bytesTotal: 100 * MiB, file: 'model.safetensors', downloadedBytes: 20 * MiB }, 3000);
    expect(v.fraction).toBeCloseTo(0.2);
    expect(v.bytesPerSecond).toBe(10 * MiB);
    expect(v.secondsLeft).toBe(8);
    expect(v.text).toBe('Downloading and uploading to the GPU: model.safetensors · 20.0 MiB / 100.0 MiB (20.0%) · 10.0 MiB/s · 8 s left');
  });

  it('averages speed over the last few seconds only', () => {
    const t = new LoadProgressTracker();
    t.update({ phase: 'weights', bytesDone: 0, bytesTotal: 1000 * MiB }, 0);
    t.update({ phase: 'weights', bytesDone: 100 * MiB, bytesTotal: 1000 * MiB }, 1000); // fast start
    for (let s = 2; s <= 10; s++) t.update({ phase: 'weights', bytesDone: (100 + (s - 1) * 10) * MiB, bytesTotal: 1000 * MiB }, s * 1000);
    const v = t.update({ phase: 'weights', bytesDone: 200 * MiB, bytesTotal: 1000 * MiB }, 11_000);
    expect(v.bytesPerSecond! / MiB).toBeCloseTo(10, 0);
  });

  it('says when bytes come from the cache, and finishes at 100%', () => {
    const t = new LoadProgressTracker();
    const cached = t.update({ phase: 'weights', bytesDone: 5 * MiB, bytesTotal: 10 * MiB, file: 'model.safetensors', downloadedBytes: 0 }, 0);
    expect(cached.text).toMatch(/^Uploading to the GPU from the cache: model\.safetensors · 5\.0 MiB \/ 10\.0 MiB \(50\.0%\)/);
    const mixed = t.update({ phase: 'weights', bytesDone: 8 * MiB, bytesTotal: 10 * MiB, downloadedBytes: 3 * MiB }, 500);
    expect(mixed.text).toMatch(/Downloading .* \(5\.0 MiB from the cache\)/);
    expect(t.update({ phase: 'compile', bytesDone: 10 * MiB, bytesTotal: 10 * MiB }, 600).fraction).toBe(1);
    expect(t.update({ phase: 'ready', bytesDone: 10 * MiB, bytesTotal: 10 * MiB }, 2600).text).toBe('Ready in 3 s.');
  });

  it('formats sizes and durations', () => {
    expect(formatSize(512)).toBe('512 B');
    expect(formatSize(1536)).toBe('1.5 KiB');
    expect(formatSize(3 * 2 ** 30)).toBe('3.00 GiB');
    expect(formatDuration(65)).toBe('1 min 05 s');
    expect(formatDuration(3720)).toBe('1 h 02 min');
    expect(formatDuration(Infinity)).toBe('—');
    expect([formatCount(292_928), formatCount(134_515_008), formatCount(1_235_814_400)]).toEqual(['293K', '135M', '1.24B']);
  });
});
