/**
 * Bytes vs tokens over the chat, in SVG: the real allocation (solid), the fp16-equivalent of the same tokens
 * (dashed), and the budget (red). A mode switch shows as a drop onto a flatter slope; a window slide, as the
 * curve stepping back to fewer tokens (a new segment). Axes grow in powers of two, so a new sample usually
 * appends one segment to each path (O(1) per token) and the whole chart is redrawn only when an axis grows.
 */
import type { MeterSample } from '../../storage/chat-history';
import { formatBytes, svg } from '../dom';

const W = 320;
const H = 100;
const PAD_L = 4;
const PAD_B = 14;
const PAD_T = 6;

/** The smallest power of two ≥ x (at least `min`). */
function niceCeil(x: number, min: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(x, min)));
}

/** The chart. */
export class SeriesChart {
  readonly element: SVGSVGElement;
  private readonly allocated: SVGPathElement;
  private readonly fp16: SVGPathElement;
  private readonly budget: SVGLineElement;
  private readonly xLabel: SVGTextElement;
  private readonly yLabel: SVGTextElement;
  private drawnFrom: readonly MeterSample[] | null = null;
  private drawn = 0;
  /** Largest tokens and bytes among the samples drawn (the axes are these rounded up). */
  private maxTokens = 0;
  private maxBytes = 0;
  private xMax = 0;
  private yMax = 0;
  private budgetBytes: number | null = null;
  private allocatedPath = '';
  private fp16Path = '';
  private prevTokens = -1;

  constructor() {
    this.allocated = svg('path', { class: 'series-allocated' });
    this.fp16 = svg('path', { class: 'series-fp16' });
    this.budget = svg('line', { class: 'budget-line', x1: PAD_L, x2: W, visibility: 'hidden' });
    this.xLabel = svg('text', { class: 'axis-label', x: W - 2, y: H - 2, 'text-anchor': 'end' });
    this.yLabel = svg('text', { class: 'axis-label', x: PAD_L + 2, y: PAD_T + 8 });
    this.element = svg(
      'svg',
      { class: 'series-chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'KV bytes versus tokens over the chat' },
      svg('line', { class: 'axis', x1: PAD_L, y1: H - PAD_B, x2: W, y2: H - PAD_B }),
      svg('line', { class: 'axis', x1: PAD_L, y1: PAD_T, x2: PAD_L, y2: H - PAD_B }),
      svg('text', { class: 'axis-label', x: PAD_L + 2, y: H - 2 }, '0'),
      this.fp16,
      this.allocated,
      this.budget,
      this.xLabel,
      this.yLabel,
    );
  }

  private x(t: number): string {
    return (PAD_L + (t / this.xMax) * (W - PAD_L - 2)).toFixed(1);
  }

  private y(b: number): string {
    return (H - PAD_B - (b / this.yMax) * (H - PAD_B - PAD_T)).toFixed(1);
  }

  /** Draw the samples (in chat order) and the budget in bytes (null = none). Appends when it can. */
  update(samples: readonly MeterSample[], budgetBytes: number | null): void {
    const fresh = samples !== this.drawnFrom || samples.length < this.drawn || budgetBytes !== this.budgetBytes;
    const from = fresh ? 0 : this.drawn;
    let xNeed = fresh ? 0 : this.maxTokens;
    let yNeed = fresh ? 0 : this.maxBytes;
    for (let i = from; i < samples.length; i++) {
      xNeed = Math.max(xNeed, samples[i].tokens);
      yNeed = Math.max(yNeed, samples[i].bytes, samples[i].fp16);
    }
    this.maxTokens = xNeed;
    this.maxBytes = yNeed;
    const showBudget = budgetBytes !== null && budgetBytes <= Math.max(yNeed, 1) * 4;
    const xMax = niceCeil(xNeed, 16);
    const yMax = niceCeil(Math.max(yNeed, showBudget ? (budgetBytes as number) : 0) * 1.05, 1024);
    if (fresh || xMax !== this.xMax || yMax !== this.yMax) this.redraw(samples, budgetBytes, showBudget, xMax, yMax);
    else this.append(samples, from);
  }

  private redraw(samples: readonly MeterSample[], budgetBytes: number | null, showBudget: boolean, xMax: number, yMax: number): void {
    this.xMax = xMax;
    this.yMax = yMax;
    this.budgetBytes = budgetBytes;
    this.drawnFrom = samples;
    this.allocatedPath = '';
    this.fp16Path = '';
    this.prevTokens = -1;
    this.append(samples, 0);
    this.budget.setAttribute('visibility', showBudget ? 'visible' : 'hidden');
    if (showBudget) {
      const by = this.y(budgetBytes as number);
      this.budget.setAttribute('y1', by);
      this.budget.setAttribute('y2', by);
    }
    this.xLabel.textContent = `${xMax} tokens`;
    this.yLabel.textContent = formatBytes(yMax);
  }

  private append(samples: readonly MeterSample[], from: number): void {
    for (let i = from; i < samples.length; i++) {
      const s = samples[i];
      // Fewer tokens than before (a window slide or a new prompt): start a new segment.
      const cmd = this.prevTokens < 0 || s.tokens < this.prevTokens ? 'M' : 'L';
      const x = this.x(s.tokens);
      this.allocatedPath += `${cmd}${x} ${this.y(s.bytes)}`;
      this.fp16Path += `${cmd}${x} ${this.y(s.fp16)}`;
      this.prevTokens = s.tokens;
    }
    this.drawn = samples.length;
    this.allocated.setAttribute('d', this.allocatedPath);
    this.fp16.setAttribute('d', this.fp16Path);
  }
}
