/**
 * Per-layer stacked bars of KV bytes by component (codes / scales / residual / merged / norms / retained /
 * full …), drawn in SVG. The two layers of a merged pair share a tinted band and a bracket labelled with
 * the pair, since their buffers are one allocation charged half to each. A dashed line marks the budget
 * per layer. Nodes are reused between updates; only widths and labels change per token.
 */
import type { KvLayerStats } from '../../worker/api';
import { formatBytes, svg } from '../dom';

/** Fixed colours of the known components; others get a stable colour from their name. */
export const COMPONENT_COLORS: Record<string, string> = {
  full: '#7d8aa8',
  codes: '#3563d0',
  scales: '#9a63d8',
  residual: '#e79a2a',
  merged: '#1d9a8c',
  norms: '#5fb6c9',
  retained: '#d64f5b',
  'channel scales': '#b48ad9',
  bitmask: '#6b6f7a',
  saliency: '#c2447e',
};

/** Colour of a component. */
export function componentColor(name: string): string {
  if (COMPONENT_COLORS[name]) return COMPONENT_COLORS[name];
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) % 360;
  return `hsl(${h} 55% 50%)`;
}

const WIDTH = 320;
const LABEL_W = 34;
const BRACKET_W = 46;
const BAR_W = WIDTH - LABEL_W - BRACKET_W;

/** The bar chart. */
export class LayerBars {
  readonly element: SVGSVGElement;
  private shapeKey = '';
  private rows: Array<{ rects: Map<string, SVGRectElement>; title: SVGTitleElement }> = [];
  private budgetLine: SVGLineElement | null = null;
  private rowH = 12;

  constructor() {
    this.element = svg('svg', { class: 'layer-bars', role: 'img', 'aria-label': 'KV bytes per layer by component', viewBox: `0 0 ${WIDTH} 20` });
  }

  /** Components present, in a stable order (known ones first). */
  static componentsOf(layers: KvLayerStats[]): string[] {
    const names = new Set<string>();
    for (const l of layers) for (const k of Object.keys(l.components)) names.add(k);
    const known = Object.keys(COMPONENT_COLORS).filter((k) => names.has(k));
    return [...known, ...[...names].filter((k) => !COMPONENT_COLORS[k]).sort()];
  }

  private build(layers: KvLayerStats[], components: string[]): void {
    const n = layers.length;
    this.rowH = Math.max(4, Math.min(11, Math.floor(150 / Math.max(1, n))));
    const height = n * this.rowH + 4;
    this.element.setAttribute('viewBox', `0 0 ${WIDTH} ${height}`);
    this.element.replaceChildren();
    this.rows = [];
    const gap = this.rowH > 8 ? 2 : 1;
    for (const l of layers) {
      const y = 2 + l.layer * this.rowH;
      if (l.pairedWith !== undefined && l.pairedWith > l.layer) {
        // The pair's band and bracket, drawn once from its first layer.
        const h = this.rowH * 2;
        this.element.append(
          svg('rect', { class: 'pair-band', x: 0, y: y - 1, width: WIDTH, height: h, rx: 3 }),
          svg('path', { class: 'pair-bracket', d: `M${WIDTH - BRACKET_W + 3} ${y + 1} h4 v${h - 4} h-4` }),
          svg('text', { class: 'pair-label', x: WIDTH - BRACKET_W + 10, y: y + this.rowH + 3 }, `L${l.layer}+${l.pairedWith}`),
        );
      }
      if (this.rowH >= 8 || l.layer % 5 === 0) {
        this.element.append(svg('text', { class: 'layer-label', x: 0, y: y + this.rowH - gap - 1 }, `L${l.layer}`));
      }
      const rects = new Map<string, SVGRectElement>();
      const title = svg('title');
      const group = svg('g', { 'data-layer': l.layer, ...(l.pairedWith !== undefined ? { 'data-paired-with': l.pairedWith } : {}) }, title);
      for (const c of components) {
        const r = svg('rect', { x: LABEL_W, y, width: 0, height: this.rowH - gap, fill: componentColor(c), 'data-component': c });
        rects.set(c, r);
        group.append(r);
      }
      this.element.append(group);
      this.rows.push({ rects, title });
    }
    this.budgetLine = svg('line', { class: 'budget-line', x1: 0, x2: 0, y1: 0, y2: height, visibility: 'hidden' });
    this.element.append(this.budgetLine);
  }

  /** Draw `layers`; `budgetPerLayer` (bytes) draws the budget line when it fits the scale. */
  update(layers: KvLayerStats[], budgetPerLayer: number | null): void {
    const components = LayerBars.componentsOf(layers);
    const key = `${layers.length}|${components.join(',')}|${layers.map((l) => l.pairedWith ?? '').join(',')}`;
    if (key !== this.shapeKey) {
      this.build(layers, components);
      this.shapeKey = key;
    }
    const maxTotal = Math.max(1, ...layers.map((l) => l.total));
    const showBudget = budgetPerLayer !== null && budgetPerLayer <= maxTotal * 3;
    const scale = BAR_W / Math.max(maxTotal, showBudget ? (budgetPerLayer as number) : 0);
    layers.forEach((l, i) => {
      const row = this.rows[i];
      let x = LABEL_W;
      for (const c of components) {
        const w = (l.components[c] ?? 0) * scale;
        const r = row.rects.get(c) as SVGRectElement;
        r.setAttribute('x', x.toFixed(1));
        r.setAttribute('width', w.toFixed(1));
        x += w;
      }
      const parts = components.filter((c) => l.components[c]).map((c) => `${c} ${formatBytes(l.components[c])}`);
      row.title.textContent = `Layer ${l.layer}${l.pairedWith !== undefined ? ` (merged with ${l.pairedWith})` : ''}: ${formatBytes(l.total)} — ${parts.join(', ')}`;
    });
    if (this.budgetLine) {
      this.budgetLine.setAttribute('visibility', showBudget ? 'visible' : 'hidden');
      if (showBudget) {
        const bx = (LABEL_W + (budgetPerLayer as number) * scale).toFixed(1);
        this.budgetLine.setAttribute('x1', bx);
        this.budgetLine.setAttribute('x2', bx);
      }
    }
  }
}
