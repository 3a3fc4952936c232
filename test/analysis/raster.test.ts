/**
 * The PNG path of the charts: the scan converter's coverage against areas worked out by
 * hand, text layout against the font's advances, the SVG subset renderer against the
 * charts' own geometry, and the PNG file against the format (CRC check value, chunk
 * CRCs, the filtered rows inflated back to the pixels).
 */
import { inflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { crc32, encodePng, svgToPng } from "../../src/analysis/png.js";
import { GLYPHS, GLYPH_UNITS } from "../../src/analysis/plot-font.js";
import { Raster, circlePolygon, rectPolygon, strokePolygons, textPolygons, textWidth } from "../../src/analysis/raster.js";
import { parseColor, svgToRaster } from "../../src/analysis/svg-raster.js";
import { barSvg, histogramSvg, lineSvg, logTicks, niceTicks } from "../../src/analysis/svg.js";

const pixel = (r: Raster, x: number, y: number) => Array.from(r.rgb.subarray(3 * (y * r.width + x), 3 * (y * r.width + x) + 3));
/** Sum over pixels and channels of how far each is from white, in pixels' worth (black ink: its area in px^2). */
const inkArea = (r: Raster) => {
  let ink = 0;
  for (let i = 0; i < r.rgb.length; i++) ink += (255 - r.rgb[i]!) / 255 / 3;
  return ink;
};

describe("raster", () => {
  it("fills a pixel-aligned rectangle exactly and blends a half-covered column half way", () => {
    const r = new Raster(10, 8);
    r.fill([rectPolygon(2, 1, 3, 4)], [0, 0, 0]);
    expect(pixel(r, 2, 1)).toEqual([0, 0, 0]);
    expect(pixel(r, 4, 4)).toEqual([0, 0, 0]);
    expect(pixel(r, 5, 4)).toEqual([255, 255, 255]);
    expect(pixel(r, 2, 5)).toEqual([255, 255, 255]);
    expect(inkArea(r)).toBeCloseTo(12, 6);
    const h = new Raster(4, 4);
    h.fill([rectPolygon(0, 0, 1.5, 4)], [0, 0, 0]);
    expect(pixel(h, 1, 2)).toEqual([128, 128, 128]);
    // Opacity scales the blend.
    const o = new Raster(2, 2);
    o.fill([rectPolygon(0, 0, 2, 2)], [0, 0, 0], 0.25);
    expect(pixel(o, 1, 1)).toEqual([191, 191, 191]);
  });

  it("covers a disc's area, and the non-zero rule leaves a counter-wound hole empty", () => {
    const r = new Raster(40, 40);
    r.fill([circlePolygon(20, 20, 10)], [0, 0, 0]);
    expect(Math.abs(inkArea(r) - Math.PI * 100)).toBeLessThan(0.01 * Math.PI * 100);
    const ring = new Raster(20, 20);
    const inner = [6, 6, 6, 14, 14, 14, 14, 6]; // the other way round
    ring.fill([rectPolygon(2, 2, 16, 16), inner], [0, 0, 0]);
    expect(inkArea(ring)).toBeCloseTo(256 - 64, 6);
    expect(pixel(ring, 10, 10)).toEqual([255, 255, 255]);
  });

  it("strokes a polyline as the union of its pieces: doubling back leaves no hole", () => {
    const r = new Raster(40, 20);
    r.fill(strokePolygons([5, 10, 35, 10, 5, 10], 4), [0, 0, 0]);
    // A 30 x 4 band with round ends of radius 2: 120 + 4 pi.
    expect(inkArea(r)).toBeCloseTo(120 + 4 * Math.PI, 0);
    expect(pixel(r, 20, 10)).toEqual([0, 0, 0]);
  });

  it("lays text out by the font's advances, along the baseline in any direction", () => {
    const A = GLYPHS["A".charCodeAt(0) - 32]!;
    expect(textWidth("AA", 16)).toBeCloseTo((2 * A[0] * 16) / GLYPH_UNITS, 10);
    const bounds = (polys: ArrayLike<number>[]) => {
      const xs = polys.flatMap((p) => Array.from(p).filter((_, i) => i % 2 === 0));
      const ys = polys.flatMap((p) => Array.from(p).filter((_, i) => i % 2 === 1));
      return { x0: Math.min(...xs), x1: Math.max(...xs), y0: Math.min(...ys), y1: Math.max(...ys) };
    };
    const flat = bounds(textPolygons("HH", 20, 100, 50));
    expect(flat.y1).toBeCloseTo(50, 6); // H sits on the baseline
    expect(flat.y0).toBeLessThan(50 - 10); // and rises above it (y down)
    expect(flat.x0).toBeGreaterThan(100);
    expect(flat.x1).toBeLessThan(100 + textWidth("HH", 20));
    // Rotated by -90 degrees the text reads upwards from (100, 50): to the left of x = 100.
    const up = bounds(textPolygons("HH", 20, 100, 50, -Math.PI / 2));
    expect(up.x1).toBeCloseTo(100, 6);
    expect(up.y1).toBeLessThan(50);
    expect(up.y0).toBeGreaterThan(50 - textWidth("HH", 20));
    // Characters the font lacks draw as "?".
    expect(textWidth("\u4e2d", 10)).toBe(textWidth("?", 10));
    expect(textWidth("\u2014", 10)).not.toBe(textWidth("?", 10));
  });
});

describe("charts as PNG", () => {
  it("renders a bar chart: each bar's colour at its centre, the rotated y label in the left margin", () => {
    const values = [1, 2, 4];
    const svg = barSvg({ title: "t", xLabel: "x", yLabel: "a y label", labels: ["", "", ""], values, colors: ["#ff0000", "#00ff00", "#0000ff"] });
    const r = svgToRaster(svg);
    expect([r.width, r.height]).toEqual([520, 360]);
    // The frame: x from 62 to 500 over [0, 3]; y from 312 (0) to 36 (4).
    const px = (v: number) => 62 + (v / 3) * 438, py = (v: number) => 312 - (v / 4) * 276;
    values.forEach((v, i) => {
      expect(pixel(r, Math.round(px(i + 0.5)), Math.round(py(v / 2)))).toEqual(parseColor(["#ff0000", "#00ff00", "#0000ff"][i]!));
      expect(pixel(r, Math.round(px(i + 0.5)), Math.round(py(v)) - 3)).toEqual([255, 255, 255]); // above the bar
    });
    let marginInk = 0;
    for (let y = 120; y < 240; y++) for (let x = 4; x < 20; x++) marginInk += 255 - pixel(r, x, y)[0]!;
    expect(marginInk).toBeGreaterThan(0);
  });

  it("draws what the SVG says: a histogram's ink grows with its bars, lines with their series", () => {
    const edges = [0, 1, 2, 3];
    const one = inkArea(svgToRaster(histogramSvg({ title: "", xLabel: "", edges, counts: [1, 0, 0] })));
    const three = inkArea(svgToRaster(histogramSvg({ title: "", xLabel: "", edges, counts: [1, 1, 1] })));
    // Each bar is a third of the 438 x 276 plot area wide and, the top padded by 5% of the
    // count range, 1 / 1.05 of it high, drawn in #1f77b4 (255 - 31, 119, 180: 57% ink).
    expect(three - one).toBeCloseTo((2 / 3) * 438 * (276 / 1.05) * ((224 + 136 + 75) / 765), -3);
    const line = inkArea(svgToRaster(lineSvg({ title: "", xLabel: "", yLabel: "", series: [{ label: "a", x: [0, 1], y: [0, 1] }] })));
    const lines = inkArea(svgToRaster(lineSvg({ title: "", xLabel: "", yLabel: "", series: [{ label: "a", x: [0, 1], y: [0, 1] }, { label: "b", x: [0, 1], y: [1, 0] }] })));
    expect(lines).toBeGreaterThan(line + 100);
  });

  it("refuses SVG it does not know rather than drawing part of it", () => {
    expect(() => svgToRaster(`<svg width="10" height="10"><path d="M0 0L5 5"/></svg>`)).toThrow(/<path> is not an element saekit's charts use/);
    expect(() => svgToRaster(`<svg width="10" height="10"><rect width="2" height="2" fill="hsl(0,0%,0%)"/></svg>`)).toThrow(/colour "hsl/);
    expect(() => svgToRaster(`<svg width="10" height="10"><text transform="skewX(3)">a</text></svg>`)).toThrow(/transform "skewX\(3\)"/);
    expect(() => svgToRaster(`<rect width="2" height="2"/>`)).toThrow(/before the <svg> element/);
  });

  it("writes a valid PNG: signature, IHDR, chunk CRCs, and the rows inflate back to the pixels", () => {
    expect((crc32(new TextEncoder().encode("123456789")) ^ 0xffffffff) >>> 0).toBe(0xcbf43926);
    const r = new Raster(5, 3);
    r.fill([rectPolygon(1, 0, 2.5, 3)], [10, 200, 30]);
    const png = encodePng(r);
    expect(Array.from(png.subarray(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const view = new DataView(png.buffer, png.byteOffset);
    const chunks: Record<string, Uint8Array> = {};
    for (let at = 8; at < png.length;) {
      const len = view.getUint32(at);
      const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
      expect((crc32(png.subarray(at + 4, at + 8 + len)) ^ 0xffffffff) >>> 0, type).toBe(view.getUint32(at + 8 + len));
      chunks[type] = png.subarray(at + 8, at + 8 + len);
      at += 12 + len;
    }
    expect(Object.keys(chunks)).toEqual(["IHDR", "IDAT", "IEND"]);
    const ihdr = new DataView(chunks.IHDR!.buffer, chunks.IHDR!.byteOffset);
    expect([ihdr.getUint32(0), ihdr.getUint32(4), chunks.IHDR![8], chunks.IHDR![9]]).toEqual([5, 3, 8, 2]);
    const raw = inflateSync(chunks.IDAT!);
    const back = new Uint8Array(5 * 3 * 3);
    for (let y = 0; y < 3; y++) {
      expect(raw[y * 16]).toBe(1); // the Sub filter
      for (let i = 0; i < 15; i++) back[y * 15 + i] = (raw[y * 16 + 1 + i]! + (i >= 3 ? back[y * 15 + i - 3]! : 0)) & 0xff;
    }
    expect(Array.from(back)).toEqual(Array.from(r.rgb));
    expect(svgToPng(`<svg width="3" height="2"><rect width="3" height="2" fill="white"/></svg>`).length).toBeGreaterThan(40);
  });
});

describe("chart axes", () => {
  it("puts ticks at round values inside the range, 1, 2 or 5 times a power of ten apart", () => {
    expect(niceTicks(-12.1, 13.3)).toEqual([-10, -5, 0, 5, 10]);
    expect(niceTicks(51200, 153600)).toEqual([60000, 80000, 100000, 120000, 140000]);
    expect(niceTicks(0, 0.7)).toEqual([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]); // no 0.30000000000000004
    expect(niceTicks(-10, 0)).toEqual([-10, -8, -6, -4, -2, 0]);
    expect(niceTicks(3, 3)).toEqual([3]);
    expect(niceTicks(0, Number.NaN)).toEqual([]);
  });

  it("on a log axis: powers of ten over many decades, 1-2-5 over a few, round values within one", () => {
    const values = (lo: number, hi: number) => logTicks(Math.log10(lo), Math.log10(hi)).map((t) => Number((10 ** t).toPrecision(6)));
    expect(values(1e-6, 3)).toEqual([1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1]);
    expect(values(1e-9, 10)).toEqual([1e-9, 1e-7, 1e-5, 1e-3, 0.1, 10]);
    expect(values(0.03, 0.9)).toEqual([0.05, 0.1, 0.2, 0.5]);
    expect(values(0.315, 0.583)).toEqual([0.35, 0.4, 0.45, 0.5, 0.55]);
  });

  it("labels a chart's axes with those ticks", () => {
    const svg = lineSvg({ title: "t", xLabel: "tokens", yLabel: "fvu", logY: true, series: [{ label: "run", x: [0, 1000], y: [0.03, 0.9] }] });
    const labels = [...svg.matchAll(/text-anchor="(?:middle|end)">([^<]+)</g)].map((m) => m[1]);
    expect(labels).toEqual(expect.arrayContaining(["0", "200", "400", "600", "800", "1000", "0.05", "0.1", "0.2", "0.5"]));
  });
});
