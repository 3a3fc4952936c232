/**
 * A small anti-aliased rasterizer for saekit's charts: everything is a polygon filled with
 * the non-zero winding rule, so rectangles, circles, stroked lines and text (outlines from
 * plot-font.ts) share one scan converter. Coverage is exact along x and sampled on 4 rows
 * per pixel along y; colours are blended over what is already there.
 */
import { EXTRA_GLYPHS, GLYPHS, GLYPH_UNITS } from "./plot-font.js";

export type Rgb = readonly [number, number, number];
/** A closed polygon as a flat list x0, y0, x1, y1, ... in pixels (y down). */
export type Polygon = ArrayLike<number>;

const SUBROWS = 4;

export class Raster {
  /** RGB, 3 bytes per pixel, rows top to bottom. */
  readonly rgb: Uint8Array;

  constructor(readonly width: number, readonly height: number, background: Rgb = [255, 255, 255]) {
    if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1 || width * height > 1 << 26) {
      throw new RangeError(`a raster of ${width} x ${height} pixels is not possible`);
    }
    this.rgb = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) this.rgb.set(background, 3 * i);
  }

  /** Fills the union of the polygons' non-zero-winding areas with `color` at `opacity`. */
  fill(polygons: Polygon[], color: Rgb, opacity = 1): void {
    // The edge table: per non-horizontal edge its y range, x at the top, dx/dy and direction.
    const yTop: number[] = [], yBot: number[] = [], xTop: number[] = [], slope: number[] = [], dir: number[] = [];
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const p of polygons) {
      const n = p.length >> 1;
      for (let i = 0; i < n; i++) {
        const ax = p[2 * i]!, ay = p[2 * i + 1]!;
        const j = (i + 1) % n;
        const bx = p[2 * j]!, by = p[2 * j + 1]!;
        if (ay === by || !Number.isFinite(ay + by + ax + bx)) continue;
        x0 = Math.min(x0, ax, bx); x1 = Math.max(x1, ax, bx);
        y0 = Math.min(y0, ay, by); y1 = Math.max(y1, ay, by);
        const down = by > ay;
        yTop.push(down ? ay : by); yBot.push(down ? by : ay);
        xTop.push(down ? ax : bx); slope.push((bx - ax) / (by - ay)); dir.push(down ? 1 : -1);
      }
    }
    if (yTop.length === 0) return;
    const top = Math.max(0, Math.floor(y0)), bottom = Math.min(this.height, Math.ceil(y1));
    const left = Math.max(0, Math.floor(x0)), right = Math.min(this.width, Math.ceil(x1));
    if (!(top < bottom && left < right)) return;
    // Edges bucketed by the first pixel row they reach, so each row scans only its own.
    const starts: number[][] = Array.from({ length: bottom - top }, () => []);
    yTop.forEach((y, e) => { if (yBot[e]! > top && y < bottom) starts[Math.max(0, Math.floor(y) - top)]!.push(e); });
    let active: number[] = [];
    const w = right - left;
    const coverage = new Float32Array(w);
    const xs: number[] = [], ds: number[] = [], order: number[] = [];
    for (let py = top; py < bottom; py++) {
      active = active.filter((e) => yBot[e]! > py);
      for (const e of starts[py - top]!) active.push(e);
      if (active.length === 0) continue;
      coverage.fill(0);
      for (let s = 0; s < SUBROWS; s++) {
        const y = py + (s + 0.5) / SUBROWS;
        xs.length = 0; ds.length = 0;
        // Half-open in y, so a vertex on the scan line counts once.
        for (const e of active) {
          if (yTop[e]! <= y && y < yBot[e]!) {
            xs.push(xTop[e]! + (y - yTop[e]!) * slope[e]!);
            ds.push(dir[e]!);
          }
        }
        order.length = 0;
        for (let i = 0; i < xs.length; i++) order.push(i);
        order.sort((a, b) => xs[a]! - xs[b]!);
        let winding = 0;
        for (let c = 0; c + 1 < order.length; c++) {
          winding += ds[order[c]!]!;
          if (winding !== 0) this.span(coverage, left, xs[order[c]!]!, xs[order[c + 1]!]!, 1 / SUBROWS);
        }
      }
      const row = py * this.width;
      for (let i = 0; i < w; i++) {
        const a = Math.min(1, coverage[i]!) * opacity;
        if (a <= 0) continue;
        const at = 3 * (row + left + i);
        for (let k = 0; k < 3; k++) this.rgb[at + k] = Math.round(this.rgb[at + k]! * (1 - a) + color[k]! * a);
      }
    }
  }

  /** Adds `weight` x the overlap of [xa, xb) with each pixel column. */
  private span(coverage: Float32Array, left: number, xa: number, xb: number, weight: number): void {
    const a = Math.max(xa, left), b = Math.min(xb, left + coverage.length);
    if (!(a < b)) return;
    const first = Math.floor(a), last = Math.min(Math.ceil(b) - 1, left + coverage.length - 1);
    for (let px = first; px <= last; px++) {
      coverage[px - left]! += weight * (Math.min(b, px + 1) - Math.max(a, px));
    }
  }
}

/** A rectangle as a polygon. */
export function rectPolygon(x: number, y: number, w: number, h: number): Polygon {
  return [x, y, x + w, y, x + w, y + h, x, y + h];
}

/** A circle as a polygon fine enough to look round at its size. */
export function circlePolygon(cx: number, cy: number, r: number): Polygon {
  const n = Math.max(8, Math.ceil(4 * Math.PI * r));
  const p = new Float64Array(2 * n);
  for (let i = 0; i < n; i++) {
    const t = (2 * Math.PI * i) / n;
    p[2 * i] = cx + r * Math.cos(t);
    p[2 * i + 1] = cy + r * Math.sin(t);
  }
  return p;
}

/**
 * A polyline stroked `width` wide with round joins and caps: one quad per segment and a
 * disc per point, all wound the same way so that the non-zero fill is their union.
 */
export function strokePolygons(points: ArrayLike<number>, width: number): Polygon[] {
  const h = width / 2;
  const out: Polygon[] = [];
  const n = points.length >> 1;
  for (let i = 0; i + 1 < n; i++) {
    const ax = points[2 * i]!, ay = points[2 * i + 1]!, bx = points[2 * i + 2]!, by = points[2 * i + 3]!;
    const len = Math.hypot(bx - ax, by - ay);
    if (len === 0) continue;
    const nx = (-(by - ay) / len) * h, ny = ((bx - ax) / len) * h;
    out.push([ax + nx, ay + ny, bx + nx, by + ny, bx - nx, by - ny, ax - nx, ay - ny]);
  }
  // Round joins only where they show: lines wider than a pixel.
  if (width > 1.2) for (let i = 0; i < n; i++) out.push(circlePolygon(points[2 * i]!, points[2 * i + 1]!, h));
  return out.map(positive);
}

/** The polygon wound so its signed area (y down) is positive. */
function positive(p: Polygon): Polygon {
  let area = 0;
  const n = p.length >> 1;
  for (let i = 0; i < n; i++) {
    const j = (i + 1) % n;
    area += p[2 * i]! * p[2 * j + 1]! - p[2 * j]! * p[2 * i + 1]!;
  }
  if (area >= 0) return p;
  const q = new Float64Array(p.length);
  for (let i = 0; i < n; i++) {
    q[2 * i] = p[2 * (n - 1 - i)]!;
    q[2 * i + 1] = p[2 * (n - 1 - i) + 1]!;
  }
  return q;
}

/** Width in pixels of `text` at `size` px. */
export function textWidth(text: string, size: number): number {
  let units = 0;
  for (const ch of text) units += glyphOf(ch)[0];
  return (units * size) / GLYPH_UNITS;
}

/**
 * The outlines of `text` at `size` px, its baseline starting at (x, y) and running along
 * (cos angle, sin angle) (angle in radians, y down: -pi/2 reads upwards).
 */
export function textPolygons(text: string, size: number, x: number, y: number, angle = 0): Polygon[] {
  const s = size / GLYPH_UNITS;
  const c = Math.cos(angle), sn = Math.sin(angle);
  const out: Polygon[] = [];
  let pen = 0;
  for (const ch of text) {
    const [advance, polys] = glyphOf(ch);
    for (const g of polys) {
      const p = new Float64Array(g.length);
      for (let i = 0; i < g.length; i += 2) {
        // Glyph space is y up; along the baseline u, across it v (down on screen).
        const u = (pen + g[i]!) * s, v = -g[i + 1]! * s;
        p[i] = x + u * c - v * sn;
        p[i + 1] = y + u * sn + v * c;
      }
      out.push(p);
    }
    pen += advance;
  }
  return out;
}

/** The glyph of a character; characters the font data lacks draw as "?". */
function glyphOf(ch: string): readonly [number, readonly (readonly number[])[]] {
  const code = ch.codePointAt(0)!;
  if (code >= 32 && code <= 126) return GLYPHS[code - 32]!;
  return EXTRA_GLYPHS.get(code) ?? GLYPHS["?".charCodeAt(0) - 32]!;
}
