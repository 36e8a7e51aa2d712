/**
 * The live cache meter: total KV bytes actually allocated (from the engine's real buffer sizes), the
 * fp16-equivalent of the tokens held, the ratio, tokens held, a total bar against the budget, per-layer
 * stacked bars by component, and bytes vs tokens over the chat. It is fed the statistics the worker streams
 * with every token (GenerateParams.streamStats), so it updates once per token at no extra round trip.
 */
import type { MeterSample } from '../../storage/chat-history';
import type { EngineStats } from '../../worker/api';
import { el, formatBytes } from '../dom';
import { componentColor, LayerBars } from './layer-bars';
import { SeriesChart } from './series-chart';

/** The meter's DOM and its update entry points. */
/** Least time between two redraws of the bytes-vs-tokens chart while tokens stream. */
const SERIES_INTERVAL_MS = 100;
/** Shortest time between two draws while tokens stream (10 per second, as the chart: faster than the numbers can be read). */
const DRAW_INTERVAL_MS = 100;

export class CacheMeter {
  readonly element: HTMLElement;
  private readonly mode = el('span', { id: 'meter-mode', className: 'meter-mode', textContent: 'no model' });
  /** Weight bytes on the GPU, in the header next to the mode (the KV numbers are below it). */
  private readonly weights = el('span', { id: 'meter-weights', className: 'meter-weights' });
  private readonly total = el('strong', { id: 'meter-total', textContent: '0 B' });
  private readonly fp16 = el('strong', { id: 'meter-fp16', textContent: '0 B' });
  private readonly ratio = el('strong', { id: 'meter-ratio', textContent: '—' });
  private readonly tokens = el('strong', { id: 'meter-tokens', textContent: '0' });
  private readonly budgetText = el('span', { id: 'meter-budget', className: 'meter-budget', textContent: 'no budget' });
  private readonly fill = el('div', { className: 'total-fill' });
  private readonly budgetMark = el('div', { className: 'total-budget', hidden: true });
  private readonly legend = el('div', { className: 'meter-legend' });
  private readonly note = el('p', { className: 'meter-note hint' });
  private readonly bars = new LayerBars();
  private readonly series = new SeriesChart();
  private samples: MeterSample[] = [];
  private budgetBytes: number | null = null;
  private last: EngineStats | null = null;
  private legendKey = '';
  private updates = 0;
  private renderMs = 0;
  /** When the numbers were last drawn (performance.now()), and the pending throttled draw. */
  private drawnAt = -Infinity;
  private drawTimer: ReturnType<typeof setTimeout> | null = null;
  private drawnAllocation = '';
  private drawPending = false;
  private seriesStale = false;
  private seriesDrawnAt = -Infinity;
  /** Checkbox: stream statistics with every token. */
  readonly liveToggle = el('input', { id: 'meter-live', type: 'checkbox', checked: true });

  constructor() {
    const stat = (label: string, value: HTMLElement) => el('div', { className: 'meter-stat' }, el('span', { className: 'meter-label' }, label), value);
    // Open on desktop; on phones the numbers and the total bar show, the charts one tap away.
    const phone = matchMedia('(max-width: 899px)');
    const details = el(
      'details',
      { className: 'meter-details', open: !phone.matches },
      el('summary', {}, 'Per layer and over the chat'),
      el('div', { className: 'meter-charts' }, el('div', { className: 'meter-chart' }, this.bars.element, this.legend), el('div', { className: 'meter-chart' }, this.series.element, seriesLegend())),
      this.note,
    );
    this.element = el(
      'section',
      { id: 'cache-meter', className: 'cache-meter', ariaLabel: 'KV cache meter' },
      el('header', { className: 'meter-head' }, el('h2', {}, 'KV cache '), this.mode, this.weights, el('label', { className: 'meter-live' }, this.liveToggle, ' live')),
      el('div', { className: 'meter-stats' }, stat('allocated', this.total), stat('fp16-equiv.', this.fp16), stat('ratio', this.ratio), stat('tokens', this.tokens)),
      el('div', { className: 'total-bar', title: 'Allocated KV bytes against the budget' }, this.fill, this.budgetMark),
      this.budgetText,
      details,
    );
    this.element.dataset.updates = '0';
    phone.addEventListener('change', () => (details.open = !phone.matches));
  }

  /**
   * Show statistics (called once per streamed token, and after loads, mode switches and turns). The numbers
   * are recorded at once and drawn in an animation frame (scheduleDraw): tokens can stream faster than the
   * display refreshes. renderMs counts both parts.
   */
  update(stats: EngineStats, streaming = false): void {
    const started = performance.now();
    this.last = stats;
    this.updates++;
    if (stats.loaded && stats.tokensHeld > 0) this.pushSample({ tokens: stats.tokensHeld, bytes: stats.kvBytes, fp16: stats.kvFp16EquivalentBytes });
    this.scheduleDraw(streaming);
    this.renderMs += performance.now() - started;
  }

  /**
   * Draw in the next animation frame; while tokens stream (`streaming`), at most once per DRAW_INTERVAL_MS:
   * queued decode delivers tokens in bursts faster than the numbers can be read, and each draw costs DOM writes.
   * Any other update (the end of a turn, a load, a mode switch) is drawn in the next frame, as is the last one.
   */
  private scheduleDraw(streaming = false): void {
    if (!streaming && this.drawTimer !== null) {
      clearTimeout(this.drawTimer);
      this.drawTimer = null;
      this.drawPending = false;
    }
    if (this.drawPending) return;
    this.drawPending = true;
    const wait = streaming ? this.drawnAt + DRAW_INTERVAL_MS - performance.now() : 0;
    if (wait > 0) {
      this.drawTimer = setTimeout(() => {
        this.drawTimer = null;
        this.drawInFrame();
      }, wait);
    } else this.drawInFrame();
  }

  private drawInFrame(): void {
    requestAnimationFrame(() => {
      const started = performance.now();
      this.drawPending = false;
      this.drawnAt = started;
      if (this.last) this.draw(this.last);
      // The chart redraws all its points: at most SERIES_INTERVAL_MS apart, and once more after the last sample.
      if (this.seriesStale && started - this.seriesDrawnAt >= SERIES_INTERVAL_MS) {
        this.seriesStale = false;
        this.seriesDrawnAt = started;
        this.series.update(this.samples, this.budgetBytes);
      }
      if (this.seriesStale) this.scheduleDraw();
      // Main-thread time spent on the meter, for the overhead measurement (e2e/meter-overhead.spec.ts).
      this.renderMs += performance.now() - started;
      this.element.dataset.renderMs = this.renderMs.toFixed(3);
    });
  }

  private draw(stats: EngineStats): void {
    const { kvBytes, kvFp16EquivalentBytes: fp16, tokensHeld } = stats;
    // Only what changed is written: most of it stays the same from one frame to the next.
    setText(this.mode, stats.loaded ? stats.kvMode : 'no model');
    setText(this.weights, stats.loaded ? `· weights ${formatBytes(stats.weightBytes)}` : '');
    setText(this.total, formatBytes(kvBytes));
    setText(this.fp16, formatBytes(fp16));
    setText(this.ratio, kvBytes > 0 && fp16 > 0 ? `${(fp16 / kvBytes).toFixed(2)}×` : '—');
    setText(this.tokens, String(tokensHeld));
    const d = this.element.dataset;
    if (d.bytes !== String(kvBytes)) d.bytes = String(kvBytes);
    d.tokens = String(tokensHeld);
    if (d.mode !== stats.kvMode) d.mode = stats.kvMode;
    d.updates = String(this.updates);
    // What the cache holds of the chat (positions, protected tokens) and the prefill work so far, for tests and tools.
    d.prefillTokens = String(stats.prefillTokensDispatched);
    // Every byte the engine's buffer owners hold (weights, KV, activations, plans): a leak check reads it.
    d.trackedBytes = String(stats.trackedBytes ?? 0);
    const at = stats.kvPositions;
    if (at) {
      d.nextPosition = String(at.nextPosition);
      d.heldRanges = at.held.map(([a, b]) => `${a}-${b}`).join(',');
      d.protectedTokens = String(at.protected.reduce((n, [a, b]) => n + b - a, 0));
      d.protectedHeld = String(at.protectedHeld);
    }
    // Allocations change only when a cache grows or is rebuilt, not with every token: redraw the bars then.
    const allocation = `${stats.kvMode}|${kvBytes}|${stats.kvLayers.length}|${this.budgetBytes}`;
    if (allocation !== this.drawnAllocation) {
      this.drawnAllocation = allocation;
      this.drawTotal();
      this.bars.update(stats.kvLayers, this.budgetBytes !== null && stats.kvLayers.length ? this.budgetBytes / stats.kvLayers.length : null);
      this.drawLegend(stats);
    }
  }

  /** Samples of the open chat (on chat switch); the meter appends to this array as tokens stream. */
  setSamples(samples: MeterSample[]): void {
    this.samples = samples;
    this.series.update(this.samples, this.budgetBytes);
  }

  /** Stores each new sample in the open chat and returns the chat's (possibly thinned) series. */
  onSample: (s: MeterSample) => MeterSample[] = (s) => [...this.samples, s];

  /** The budget in bytes, or null when off. */
  setBudget(bytes: number | null): void {
    this.budgetBytes = bytes;
    this.budgetText.textContent = bytes === null ? 'no budget' : `budget ${formatBytes(bytes)}`;
    if (this.last) this.update(this.last);
    else this.drawTotal();
    this.series.update(this.samples, bytes);
  }

  /** Say whether full-precision K/V is f32 here (then the full mode's ratio is 0.5×). */
  setAdapterF16(f16: boolean): void {
    this.note.textContent = f16
      ? 'Ratio = fp16-equivalent ÷ allocated. Bars: real buffer bytes per layer; merged pairs share a band.'
      : 'This GPU has no f16: full-precision K/V is f32, so the full mode shows 0.5×. Ratios are against an fp16 cache.';
  }

  private pushSample(s: MeterSample): void {
    const prev = this.samples[this.samples.length - 1];
    if (prev && prev.tokens === s.tokens && prev.bytes === s.bytes) return;
    this.samples = this.onSample(s);
    this.seriesStale = true;
  }

  private drawTotal(): void {
    const bytes = this.last?.kvBytes ?? 0;
    const scale = Math.max(bytes, this.budgetBytes ?? 0) * 1.05 || 1;
    this.fill.style.width = `${((bytes / scale) * 100).toFixed(1)}%`;
    this.fill.classList.toggle('over', this.budgetBytes !== null && bytes > this.budgetBytes);
    this.budgetMark.hidden = this.budgetBytes === null;
    if (this.budgetBytes !== null) this.budgetMark.style.left = `${((this.budgetBytes / scale) * 100).toFixed(1)}%`;
  }

  private drawLegend(stats: EngineStats): void {
    const components = LayerBars.componentsOf(stats.kvLayers);
    const key = components.join(',');
    if (key === this.legendKey) return;
    this.legendKey = key;
    this.legend.replaceChildren(
      ...components.map((c) => el('span', { className: 'legend-item' }, swatch(componentColor(c)), c)),
      el('span', { className: 'legend-item' }, el('i', { className: 'swatch budget' }), 'budget ÷ layers'),
    );
  }
}

function swatch(color: string): HTMLElement {
  const s = el('i', { className: 'swatch' });
  s.style.background = color;
  return s;
}

function seriesLegend(): HTMLElement {
  return el(
    'div',
    { className: 'meter-legend' },
    el('span', { className: 'legend-item' }, el('i', { className: 'swatch allocated' }), 'allocated'),
    el('span', { className: 'legend-item' }, el('i', { className: 'swatch fp16' }), 'fp16-equivalent'),
    el('span', { className: 'legend-item' }, el('i', { className: 'swatch budget' }), 'budget'),
  );
}

/** Set an element's text only when it differs (a write is a DOM mutation even when equal). */
function setText(e: HTMLElement, text: string): void {
  if (e.textContent !== text) e.textContent = text;
}
