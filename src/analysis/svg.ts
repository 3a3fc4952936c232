/**
 * Small, dependency-free SVG charts for analysis reports: a histogram, a scatter plot and a
 * bar chart, each a standalone <svg> string that browsers, image viewers and HTML reports
 * show as is.
 */

const W = 520;
const H = 360;
const M = { left: 62, right: 20, top: 36, bottom: 48 };

/** Matplotlib's tab10, for categories (clusters). */
export const CATEGORY_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

/** A viridis-like colour for t in [0, 1] (purple -> green -> yellow), for continuous values. */
export function viridis(t: number): string {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const c = stops[i]!.map((v, k) => Math.round(v + f * (stops[i + 1]![k]! - v)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c]!);
}

/** Short tick labels: 3 significant digits, no trailing zeros. */
function fmt(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(1) : String(Number(v.toPrecision(3)));
}

/**
 * Axis ticks at round values in [lo, hi], about `target` of them: steps of 1, 2 or 5 times a
 * power of ten, as matplotlib's and d3's axes place them.
 */
export function niceTicks(lo: number, hi: number, target = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / target;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / magnitude;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
  const ticks: number[] = [];
  // toPrecision(12) drops the float residue of i * step (0.30000000000000004).
  // (At most 2 target + 1: a range of a few ulps must not spin on rounding.)
  for (let i = Math.ceil(lo / step - 1e-9); i * step <= hi + step * 1e-9 && ticks.length <= 2 * target; i++) {
    ticks.push(Number((i * step).toPrecision(12)));
  }
  return ticks;
}

/**
 * Ticks for an axis of log10 values [lo, hi], as log10 positions: powers of ten over three
 * decades or more, 1, 2 and 5 times them over one to three, round values within one.
 */
export function logTicks(lo: number, hi: number): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  const span = hi - lo;
  const within = (v: number) => v >= lo - 1e-9 && v <= hi + 1e-9;
  if (span >= 3) {
    const every = Math.ceil(span / 7); // at most 8 labels
    const ticks: number[] = [];
    for (let e = Math.ceil(lo - 1e-9); e <= hi + 1e-9; e += every) ticks.push(e);
    return ticks;
  }
  if (span >= 1) {
    const ticks: number[] = [];
    for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
      for (const m of [1, 2, 5]) if (within(e + Math.log10(m))) ticks.push(e + Math.log10(m));
    }
    return ticks;
  }
  return niceTicks(10 ** lo, 10 ** hi).map(Math.log10).filter(within);
}

/** [min, max] of the values ([0, 1] when there are none). */
function extent(v: number[]): [number, number] {
  return v.length ? [v.reduce((a, b) => Math.min(a, b)), v.reduce((a, b) => Math.max(a, b))] : [0, 1];
}

interface Frame {
  title: string;
  xLabel: string;
  yLabel: string;
  x: [number, number];
  y: [number, number];
  /** Numeric ticks on the x axis (off for categories). */
  xTicks?: boolean;
  /** The y values are log10 of the data: label ticks with 10^y. */
  logY?: boolean;
  /**
   * Room around the data, as a fraction of its range (matplotlib's margins): "both" ends, or
   * only "top" (the far end) for counts and bars that start at 0. Default none.
   */
  xPad?: "both";
  yPad?: "both" | "top";
}

/** [lo, hi] widened by 5% of its span at the ends `pad` names. */
function padded([lo, hi]: [number, number], pad: "both" | "top" | undefined): [number, number] {
  const margin = 0.05 * (hi - lo);
  return pad === "both" ? [lo - margin, hi + margin] : pad === "top" ? [lo, hi + margin] : [lo, hi];
}

/** The chart frame (title, axes, ticks) and the data-to-pixel maps. */
function frame(f: Frame): { open: string; close: string; px: (v: number) => number; py: (v: number) => number } {
  const [x0, x1] = padded(f.x[0] === f.x[1] ? [f.x[0] - 1, f.x[1] + 1] : f.x, f.xPad);
  const [y0, y1] = padded(f.y[0] === f.y[1] ? [f.y[0] - 1, f.y[1] + 1] : f.y, f.yPad);
  const px = (v: number) => M.left + ((v - x0) / (x1 - x0)) * (W - M.left - M.right);
  const py = (v: number) => H - M.bottom - ((v - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="13">${escapeXml(f.title)}</text>`,
    `<line x1="${M.left}" y1="${H - M.bottom}" x2="${W - M.right}" y2="${H - M.bottom}" stroke="black"/>`,
    `<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${H - M.bottom}" stroke="black"/>`,
  ];
  if (f.xTicks !== false) {
    for (const xv of niceTicks(x0, x1)) {
      const x = px(xv).toFixed(1);
      parts.push(`<line x1="${x}" y1="${H - M.bottom}" x2="${x}" y2="${H - M.bottom + 4}" stroke="black"/>`);
      parts.push(`<text x="${x}" y="${H - M.bottom + 16}" text-anchor="middle">${fmt(xv)}</text>`);
    }
  }
  for (const yv of f.logY ? logTicks(y0, y1) : niceTicks(y0, y1)) {
    const y = py(yv);
    parts.push(`<line x1="${M.left - 4}" y1="${y.toFixed(1)}" x2="${M.left}" y2="${y.toFixed(1)}" stroke="black"/>`);
    parts.push(`<text x="${M.left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${fmt(f.logY ? 10 ** yv : yv)}</text>`);
  }
  parts.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 10}" text-anchor="middle">${escapeXml(f.xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(f.yLabel)}</text>`);
  return { open: parts.join("\n"), close: "</svg>\n", px, py };
}

export function histogramSvg(o: { title: string; xLabel: string; yLabel?: string; edges: number[]; counts: number[] }): string {
  const max = Math.max(1, ...o.counts);
  const f = frame({ title: o.title, xLabel: o.xLabel, yLabel: o.yLabel ?? "count", x: [o.edges[0]!, o.edges[o.edges.length - 1]!], y: [0, max], yPad: "top" });
  const bars = o.counts.map((c, i) => {
    const x = f.px(o.edges[i]!);
    const w = Math.max(0.5, f.px(o.edges[i + 1]!) - x - 0.5);
    return `<rect x="${x.toFixed(1)}" y="${f.py(c).toFixed(1)}" width="${w.toFixed(1)}" height="${(f.py(0) - f.py(c)).toFixed(1)}" fill="#1f77b4"><title>${fmt(o.edges[i]!)}..${fmt(o.edges[i + 1]!)}: ${c}</title></rect>`;
  });
  return `${f.open}\n${bars.join("\n")}\n${f.close}`;
}

export function scatterSvg(o: {
  title: string; xLabel?: string; yLabel?: string; x: number[]; y: number[]; colors: string[];
  /** Point radii (default 2.5). */
  radii?: number[];
  /** Hover text per point. */
  labels?: string[];
  /** A line of text under the title, e.g. what the colours mean. */
  caption?: string;
}): string {
  const f = frame({ title: o.title, xLabel: o.xLabel ?? "", yLabel: o.yLabel ?? "", x: extent(o.x), y: extent(o.y), xPad: "both", yPad: "both" });
  const dots = o.x.map((x, i) => {
    const tip = o.labels ? `<title>${escapeXml(o.labels[i]!)}</title>` : "";
    return `<circle cx="${f.px(x).toFixed(1)}" cy="${f.py(o.y[i]!).toFixed(1)}" r="${(o.radii?.[i] ?? 2.5).toFixed(2)}" fill="${o.colors[i]}" fill-opacity="0.8">${tip}</circle>`;
  });
  const caption = o.caption ? `<text x="${W / 2}" y="32" text-anchor="middle" fill="#555">${escapeXml(o.caption)}</text>\n` : "";
  return `${f.open}\n${caption}${dots.join("\n")}\n${f.close}`;
}

export function barSvg(o: { title: string; xLabel: string; yLabel: string; labels: string[]; values: number[]; colors?: string[] }): string {
  const n = o.values.length;
  const f = frame({ title: o.title, xLabel: o.xLabel, yLabel: o.yLabel, x: [0, Math.max(1, n)], y: [0, Math.max(1e-12, ...o.values)], xTicks: false, yPad: "top" });
  const bars = o.values.map((v, i) => {
    const x = f.px(i + 0.1);
    const w = f.px(i + 0.9) - x;
    return `<rect x="${x.toFixed(1)}" y="${f.py(v).toFixed(1)}" width="${w.toFixed(1)}" height="${(f.py(0) - f.py(v)).toFixed(1)}" fill="${o.colors?.[i] ?? "#1f77b4"}"><title>${escapeXml(o.labels[i]!)}: ${fmt(v)}</title></rect>` +
      `<text x="${(x + w / 2).toFixed(1)}" y="${(f.py(0) - 4).toFixed(1)}" text-anchor="middle" fill="white" font-size="9">${escapeXml(o.labels[i]!)}</text>`;
  });
  return `${f.open}\n${bars.join("\n")}\n${f.close}`;
}

/** Lines of (x, y) points, one per series, with a legend; a log y axis when asked (positive values only). */
export function lineSvg(o: {
  title: string; xLabel: string; yLabel: string; logY?: boolean;
  series: Array<{ label: string; x: number[]; y: number[] }>;
}): string {
  const tf = (v: number) => (o.logY ? Math.log10(v) : v);
  const ok = (v: number) => Number.isFinite(v) && (!o.logY || v > 0);
  const xs = o.series.flatMap((s) => s.x.filter(Number.isFinite));
  const ys = o.series.flatMap((s) => s.y.filter(ok).map(tf));
  const f = frame({ title: o.title, xLabel: o.xLabel, yLabel: o.logY ? `${o.yLabel} (log scale)` : o.yLabel, x: extent(xs), y: extent(ys), logY: o.logY, yPad: "both" });
  const lines = o.series.map((s, i) => {
    const colour = CATEGORY_COLORS[i % CATEGORY_COLORS.length]!;
    const pts = s.x.map((x, k) => [x, s.y[k]!] as const).filter(([x, y]) => Number.isFinite(x) && ok(y))
      .map(([x, y]) => `${f.px(x).toFixed(1)},${f.py(tf(y)).toFixed(1)}`);
    const legend = `<rect x="${W - M.right - 150}" y="${M.top + 4 + 14 * i}" width="10" height="10" fill="${colour}"/>` +
      `<text x="${W - M.right - 136}" y="${M.top + 13 + 14 * i}">${escapeXml(s.label)}</text>`;
    return `<polyline fill="none" stroke="${colour}" stroke-width="1.5" points="${pts.join(" ")}"/>\n${legend}`;
  });
  return `${f.open}\n${lines.join("\n")}\n${f.close}`;
}
