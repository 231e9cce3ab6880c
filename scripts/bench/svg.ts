/**
 * The two charts of docs/benchmarks.md, written as plain SVG text (no chart library).
 */

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(value: number, digits = 2): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

export interface Bar {
  label: string;
  value: number;
  /** Drawn in the accent colour (this project's contestants). */
  highlight?: boolean;
}

/**
 * Horizontal bar chart of ratios, with dashed reference lines (e.g. 1.0 = dedicated, 0.95 = target).
 */
export function barChart(
  title: string,
  subtitle: string,
  bars: readonly Bar[],
  references: ReadonlyArray<{ at: number; label: string; side: 'left' | 'right' }>,
): string {
  const width = 760;
  const left = 230;
  const right = 70;
  const top = 64;
  const row = 38;
  const barHeight = 24;
  const plotWidth = width - left - right;
  const height = top + bars.length * row + 46;
  const maxValue = Math.max(1.1, ...bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)), ...references.map((r) => r.at)) * 1.08;
  const x = (v: number): number => left + (Math.max(0, v) / maxValue) * plotWidth;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`);
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="16" y="26" font-size="17" font-weight="600" fill="#111">${esc(title)}</text>`);
  parts.push(`<text x="16" y="46" font-size="12" fill="#555">${esc(subtitle)}</text>`);
  // grid and axis ticks every 0.2
  const axisY = top + bars.length * row + 4;
  for (let t = 0; t <= maxValue + 1e-9; t += 0.2) {
    const tx = x(t);
    parts.push(`<line x1="${tx.toFixed(1)}" y1="${top - 6}" x2="${tx.toFixed(1)}" y2="${axisY}" stroke="#eee"/>`);
    parts.push(`<text x="${tx.toFixed(1)}" y="${axisY + 16}" font-size="11" fill="#666" text-anchor="middle">${t.toFixed(1)}</text>`);
  }
  parts.push(`<line x1="${left}" y1="${axisY}" x2="${width - right}" y2="${axisY}" stroke="#999"/>`);
  bars.forEach((bar, i) => {
    const y = top + i * row;
    const fill = bar.highlight ? '#2563eb' : '#9ca3af';
    const w = Number.isFinite(bar.value) ? x(bar.value) - left : 0;
    parts.push(`<text x="${left - 10}" y="${y + barHeight / 2 + 4}" font-size="13" fill="#222" text-anchor="end">${esc(bar.label)}</text>`);
    parts.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" rx="3" fill="${fill}"/>`);
    parts.push(`<text x="${(left + w + 6).toFixed(1)}" y="${y + barHeight / 2 + 4}" font-size="12" fill="#222">${fmt(bar.value)}×</text>`);
  });
  for (const ref of references) {
    const rx = x(ref.at);
    parts.push(`<line x1="${rx.toFixed(1)}" y1="${top - 10}" x2="${rx.toFixed(1)}" y2="${axisY}" stroke="#dc2626" stroke-dasharray="5,4"/>`);
    const anchor = ref.side === 'left' ? `x="${(rx - 4).toFixed(1)}" text-anchor="end"` : `x="${(rx + 4).toFixed(1)}"`;
    parts.push(`<text ${anchor} y="${top - 12}" font-size="11" fill="#dc2626">${esc(ref.label)}</text>`);
  }
  parts.push(`<text x="${left + plotWidth / 2}" y="${height - 6}" font-size="11" fill="#666" text-anchor="middle">throughput relative to dedicated pg clients (higher is better)</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

export interface Series {
  label: string;
  color: string;
  /** [x, y] points; x > 0 (log scale). */
  points: ReadonlyArray<readonly [number, number]>;
}

/** "Nice" tick values covering 0..max. */
function niceTicks(max: number, count = 5): number[] {
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let t = 0; t <= max + step * 1e-9; t += step) ticks.push(t);
  return ticks;
}

/**
 * Line chart with a log-scale x axis (powers of ten). The y axis is linear from zero, or
 * logarithmic when the values span more than a factor of 20 (so no series is flattened).
 */
export function lineChartLogX(title: string, subtitle: string, xLabel: string, yLabel: string, series: readonly Series[]): string {
  const width = 760;
  const height = 420;
  const left = 78;
  const right = 190;
  const top = 64;
  const bottom = 56;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => Number.isFinite(v));
  const minExp = Math.floor(Math.log10(Math.min(...xs)));
  const maxExp = Math.ceil(Math.log10(Math.max(...xs)));
  const yLow = Math.max(1e-9, Math.min(...ys));
  const yHigh = Math.max(1, ...ys);
  const logY = yHigh / yLow > 20;
  let ticksY: number[];
  let py: (v: number) => number;
  if (logY) {
    const lo = Math.floor(Math.log10(yLow));
    const hi = Math.ceil(Math.log10(yHigh));
    ticksY = [];
    for (let e = lo; e <= hi; e++) ticksY.push(10 ** e);
    py = (v) => top + plotH - ((Math.log10(v) - lo) / Math.max(1, hi - lo)) * plotH;
  } else {
    ticksY = niceTicks(yHigh * 1.1);
    const yMax = ticksY[ticksY.length - 1] as number;
    py = (v) => top + plotH - (v / yMax) * plotH;
  }
  const px = (v: number): number => left + ((Math.log10(v) - minExp) / Math.max(1, maxExp - minExp)) * plotW;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`);
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="16" y="26" font-size="17" font-weight="600" fill="#111">${esc(title)}</text>`);
  parts.push(`<text x="16" y="46" font-size="12" fill="#555">${esc(subtitle)}</text>`);
  for (const t of ticksY) {
    const y = py(t).toFixed(1);
    parts.push(`<line x1="${left}" y1="${y}" x2="${left + plotW}" y2="${y}" stroke="#eee"/>`);
    parts.push(`<text x="${left - 8}" y="${Number(y) + 4}" font-size="11" fill="#666" text-anchor="end">${t >= 1000 ? t.toLocaleString('en-US') : String(Math.round(t * 100) / 100)}</text>`);
  }
  for (let e = minExp; e <= maxExp; e++) {
    const x = px(10 ** e).toFixed(1);
    parts.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + plotH}" stroke="#eee"/>`);
    parts.push(`<text x="${x}" y="${top + plotH + 18}" font-size="11" fill="#666" text-anchor="middle">${(10 ** e).toLocaleString('en-US')}</text>`);
  }
  parts.push(`<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#999"/>`);
  parts.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#999"/>`);
  parts.push(`<text x="${left + plotW / 2}" y="${height - 14}" font-size="12" fill="#444" text-anchor="middle">${esc(xLabel)}</text>`);
  parts.push(`<text transform="translate(18 ${top + plotH / 2}) rotate(-90)" font-size="12" fill="#444" text-anchor="middle">${esc(yLabel + (logY ? ' (log scale)' : ''))}</text>`);
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => Number.isFinite(p[1]));
    if (pts.length > 0) {
      const d = pts.map((p, j) => `${j === 0 ? 'M' : 'L'}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(' ');
      parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2.5"/>`);
      for (const p of pts) {
        parts.push(`<circle cx="${px(p[0]).toFixed(1)}" cy="${py(p[1]).toFixed(1)}" r="4" fill="${s.color}"><title>${esc(`${s.label}: ${Math.round(p[1])} ns/op at ${p[0]}`)}</title></circle>`);
      }
    }
    const ly = top + 10 + i * 24;
    const lx = left + plotW + 20;
    parts.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="${s.color}" stroke-width="3"/>`);
    parts.push(`<text x="${lx + 28}" y="${ly + 4}" font-size="12" fill="#222">${esc(s.label)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
