/**
 * Bytes vs tokens over the chat, in SVG: the real allocation (solid), the fp16-equivalent of the same tokens
 * (dashed), and the budget (red). A mode switch shows as a drop onto a flatter slope; a window slide, as the
 * curve stepping back to fewer tokens (a new segment).
 */
import type { MeterSample } from '../../storage/chat-history';
import { formatBytes, svg } from '../dom';

const W = 320;
const H = 100;
const PAD_L = 4;
const PAD_B = 14;
const PAD_T = 6;

/** The chart. */
export class SeriesChart {
  readonly element: SVGSVGElement;
  private readonly allocated: SVGPathElement;
  private readonly fp16: SVGPathElement;
  private readonly budget: SVGLineElement;
  private readonly xLabel: SVGTextElement;
  private readonly yLabel: SVGTextElement;

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

  /** Redraw from the samples (in chat order) and the budget in bytes (null = none). */
  update(samples: readonly MeterSample[], budgetBytes: number | null): void {
    const maxTokens = Math.max(16, ...samples.map((s) => s.tokens));
    const peak = Math.max(1, ...samples.map((s) => Math.max(s.bytes, s.fp16)));
    const showBudget = budgetBytes !== null && budgetBytes <= peak * 4;
    const maxBytes = Math.max(peak, showBudget ? (budgetBytes as number) : 0) * 1.08;
    const x = (t: number) => (PAD_L + (t / maxTokens) * (W - PAD_L - 2)).toFixed(1);
    const y = (b: number) => (H - PAD_B - (b / maxBytes) * (H - PAD_B - PAD_T)).toFixed(1);
    let allocated = '';
    let fp16 = '';
    let prevTokens = -1;
    for (const s of samples) {
      // Fewer tokens than before (a window slide or a new prompt): start a new segment.
      const cmd = s.tokens < prevTokens || prevTokens < 0 ? 'M' : 'L';
      allocated += `${cmd}${x(s.tokens)} ${y(s.bytes)}`;
      fp16 += `${cmd}${x(s.tokens)} ${y(s.fp16)}`;
      prevTokens = s.tokens;
    }
    this.allocated.setAttribute('d', allocated);
    this.fp16.setAttribute('d', fp16);
    this.budget.setAttribute('visibility', showBudget ? 'visible' : 'hidden');
    if (showBudget) {
      const by = y(budgetBytes as number);
      this.budget.setAttribute('y1', by);
      this.budget.setAttribute('y2', by);
    }
    this.xLabel.textContent = `${maxTokens} tokens`;
    this.yLabel.textContent = formatBytes(maxBytes / 1.08);
  }
}
