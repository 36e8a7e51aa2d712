/**
 * The bytes-against-KL frontier of `npm run eval`: which rows are Pareto-optimal (no other row is both
 * smaller and closer to full), the best ratio under a quality bar and the best quality at a ratio, and an
 * SVG scatter plot (ratio against mean KL, log scale) for bench/results/kv-frontier.svg.
 */
import type { QualityRow } from './summary';

/** Rows with ratio r and KL k on the frontier: no other row has ratio ≥ r and KL ≤ k with one strictly better. */
export function paretoFront(rows: QualityRow[]): Set<QualityRow> {
  const ok = rows.filter((r) => r.ratioF16 !== null);
  return new Set(ok.filter((a) => !ok.some((b) => b !== a && (b.ratioF16 as number) >= (a.ratioF16 as number) && b.klMean <= a.klMean && ((b.ratioF16 as number) > (a.ratioF16 as number) || b.klMean < a.klMean))));
}

/** The quality bar of the flagship: last-quarter |Δppl| ≤ 2% and mean KL ≤ 0.02 (over all N and the last quarter). */
export function meetsQuality(r: QualityRow, maxDeltaPct = 2, maxKl = 0.02): boolean {
  return Math.abs(r.deltaPct) <= maxDeltaPct && r.klMean <= maxKl && r.klMeanLastQuarter <= maxKl;
}

/** The largest ratio among rows that `passes` (default: the quality bar on the row itself), and the best (lowest-KL) row at ≥ `ratio`. */
export function frontierAnswers(rows: QualityRow[], ratio = 8, passes: (r: QualityRow) => boolean = (r) => meetsQuality(r)): { bestRatioAtQuality: QualityRow | null; bestQualityAtRatio: QualityRow | null } {
  const sized = rows.filter((r) => r.ratioF16 !== null);
  const good = sized.filter(passes).sort((a, b) => (b.ratioF16 as number) - (a.ratioF16 as number));
  const big = sized.filter((r) => (r.ratioF16 as number) >= ratio).sort((a, b) => a.klMean - b.klMean);
  return { bestRatioAtQuality: good[0] ?? null, bestQualityAtRatio: big[0] ?? null };
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** A scatter plot of ×fp16 (x) against mean KL (y, log scale), frontier points joined and labelled. */
export function frontierSvg(rows: QualityRow[], title: string): string {
  const pts = rows.filter((r) => r.ratioF16 !== null && r.klMean > 0);
  const W = 860;
  const H = 520;
  const m = { l: 70, r: 20, t: 40, b: 50 };
  const xs = pts.map((r) => r.ratioF16 as number);
  const ys = pts.map((r) => Math.log10(r.klMean));
  const x0 = 0;
  const x1 = Math.max(9, Math.ceil(Math.max(...xs, 1)));
  const y0 = Math.floor(Math.min(...ys, -3));
  const y1 = Math.ceil(Math.max(...ys, -1));
  const X = (v: number) => m.l + ((v - x0) / (x1 - x0)) * (W - m.l - m.r);
  const Y = (v: number) => H - m.b - ((Math.log10(v) - y0) / (y1 - y0)) * (H - m.t - m.b);
  const front = [...paretoFront(pts)].sort((a, b) => (a.ratioF16 as number) - (b.ratioF16 as number));
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`, `<rect width="${W}" height="${H}" fill="white"/>`, `<text x="${m.l}" y="20" font-size="14">${esc(title)}</text>`];
  for (let x = x0; x <= x1; x++) out.push(`<line x1="${X(x)}" y1="${m.t}" x2="${X(x)}" y2="${H - m.b}" stroke="#eee"/>`, `<text x="${X(x)}" y="${H - m.b + 15}" text-anchor="middle">${x}×</text>`);
  for (let y = y0; y <= y1; y++) out.push(`<line x1="${m.l}" y1="${Y(10 ** y)}" x2="${W - m.r}" y2="${Y(10 ** y)}" stroke="#eee"/>`, `<text x="${m.l - 6}" y="${Y(10 ** y) + 4}" text-anchor="end">1e${y}</text>`);
  out.push(`<line x1="${X(8)}" y1="${m.t}" x2="${X(8)}" y2="${H - m.b}" stroke="#c33" stroke-dasharray="4 3"/>`, `<line x1="${m.l}" y1="${Y(0.02)}" x2="${W - m.r}" y2="${Y(0.02)}" stroke="#c33" stroke-dasharray="4 3"/>`);
  out.push(`<text x="${X(8) + 4}" y="${m.t + 12}" fill="#c33">8×</text>`, `<text x="${W - m.r - 4}" y="${Y(0.02) - 4}" fill="#c33" text-anchor="end">KL 0.02</text>`);
  out.push(`<text x="${(W + m.l) / 2}" y="${H - 12}" text-anchor="middle">×fp16 (f16 layout, allocated bytes)</text>`, `<text x="16" y="${H / 2}" transform="rotate(-90 16 ${H / 2})" text-anchor="middle">mean KL vs full (nats/token)</text>`);
  if (front.length > 1) out.push(`<polyline fill="none" stroke="#36c" points="${front.map((r) => `${X(r.ratioF16 as number)},${Y(r.klMean)}`).join(' ')}"/>`);
  for (const r of pts) {
    const on = front.includes(r);
    out.push(`<circle cx="${X(r.ratioF16 as number)}" cy="${Y(r.klMean)}" r="${on ? 4 : 3}" fill="${r.mode.includes('rot') ? '#e80' : '#36c'}" fill-opacity="${on ? 1 : 0.5}"/>`);
    out.push(`<text x="${X(r.ratioF16 as number) + 6}" y="${Y(r.klMean) - 4}" fill="#333" fill-opacity="${on ? 1 : 0.6}">${esc(r.mode)}</text>`);
  }
  out.push(`<text x="${W - m.r}" y="20" text-anchor="end"><tspan fill="#36c">● plain</tspan>  <tspan fill="#e80">● rotated</tspan>  line: Pareto front</text>`, '</svg>');
  return out.join('\n') + '\n';
}
