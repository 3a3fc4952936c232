/**
 * Renders the SVG that saekit's charts write (svg.ts) to a Raster, for PNG files: the
 * elements svg, rect, line, polyline, circle, text (with text-anchor, font-size and
 * translate/rotate transforms) and title (a tooltip, not drawn). Anything else is refused
 * by name, so a chart that starts using a new element fails its tests instead of losing it.
 */
import { type Polygon, Raster, type Rgb, circlePolygon, rectPolygon, strokePolygons, textPolygons, textWidth } from "./raster.js";

const NAMED: Record<string, Rgb> = { white: [255, 255, 255], black: [0, 0, 0] };

/** An SVG colour: #rrggbb, #rgb, rgb(r,g,b), white or black; null for none. */
export function parseColor(value: string): Rgb | null {
  const v = value.trim();
  if (v === "none") return null;
  if (NAMED[v]) return NAMED[v];
  let m = /^#([0-9a-f]{6})$/i.exec(v);
  if (m) return [0, 2, 4].map((i) => parseInt(m![1]!.slice(i, i + 2), 16)) as unknown as Rgb;
  m = /^#([0-9a-f]{3})$/i.exec(v);
  if (m) return [0, 1, 2].map((i) => 17 * parseInt(m![1]![i]!, 16)) as unknown as Rgb;
  m = /^rgb\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)$/.exec(v);
  if (m) return [Number(m[1]), Number(m[2]), Number(m[3])].map((c) => Math.min(255, c)) as unknown as Rgb;
  throw new Error(`svg: colour "${value}" is not one saekit's charts use (#rrggbb, rgb(r,g,b), white, black, none)`);
}

function unescapeXml(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos);/g, (_, e: string) => ({ lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" })[e]!);
}

type Attrs = Record<string, string>;

function attributes(text: string): Attrs {
  const out: Attrs = {};
  for (const m of text.matchAll(/([\w:-]+)="([^"]*)"/g)) out[m[1]!] = unescapeXml(m[2]!);
  return out;
}

/** A point map and the rotation (radians) of a transform="translate(..) rotate(..)" list. */
function transformOf(value: string | undefined): { map: (x: number, y: number) => [number, number]; angle: number } {
  const steps: Array<(p: [number, number]) => [number, number]> = [];
  let angle = 0;
  for (const m of (value ?? "").matchAll(/(\w+)\(([^)]*)\)/g)) {
    const args = m[2]!.split(/[\s,]+/).filter(Boolean).map(Number);
    if (m[1] === "translate") {
      const [tx = 0, ty = 0] = args;
      steps.push(([x, y]) => [x + tx, y + ty]);
    } else if (m[1] === "rotate" && args.length === 1) {
      const t = (args[0]! * Math.PI) / 180;
      angle += t;
      steps.push(([x, y]) => [x * Math.cos(t) - y * Math.sin(t), x * Math.sin(t) + y * Math.cos(t)]);
    } else {
      throw new Error(`svg: transform "${m[0]}" is not one saekit's charts use (translate, rotate about the origin)`);
    }
  }
  // SVG applies the rightmost transform to a point first.
  return { map: (x, y) => steps.reduceRight<[number, number]>((p, f) => f(p), [x, y]), angle };
}

export function svgToRaster(svg: string): Raster {
  const num = (a: Attrs, key: string, fallback = 0): number => {
    if (a[key] === undefined) return fallback;
    const v = Number(a[key]);
    if (!Number.isFinite(v)) throw new Error(`svg: ${key}="${a[key]}" is not a number`);
    return v;
  };
  let image: Raster | null = null;
  let fontSize = 11;
  // The open <text> element and its content, and how deep inside <title> we are.
  let text: { attrs: Attrs; content: string } | null = null;
  let inTitle = 0;
  const draw = (): Raster => image ?? (() => { throw new Error("svg: drawing before the <svg> element"); })();
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)>|([^<]+)/g)) {
    const [, closing, tag, attrText, selfClosing, chars] = m;
    if (chars !== undefined) {
      if (text && inTitle === 0) text.content += chars;
      continue;
    }
    const a = attributes(attrText ?? "");
    if (closing) {
      if (tag === "title") inTitle--;
      if (tag === "text" && text) {
        drawText(draw(), text.attrs, unescapeXml(text.content), fontSize);
        text = null;
      }
      continue;
    }
    switch (tag) {
      case "svg":
        image = new Raster(Math.round(num(a, "width", 300)), Math.round(num(a, "height", 150)));
        fontSize = num(a, "font-size", fontSize);
        break;
      case "title":
        if (!selfClosing) inTitle++;
        break;
      case "rect": {
        const fill = parseColor(a.fill ?? "black");
        if (fill) draw().fill([rectPolygon(num(a, "x"), num(a, "y"), num(a, "width"), num(a, "height"))], fill, num(a, "fill-opacity", 1));
        break;
      }
      case "circle": {
        const fill = parseColor(a.fill ?? "black");
        if (fill) draw().fill([circlePolygon(num(a, "cx"), num(a, "cy"), num(a, "r"))], fill, num(a, "fill-opacity", 1));
        break;
      }
      case "line":
      case "polyline": {
        const stroke = parseColor(a.stroke ?? "none");
        if (tag === "polyline" && parseColor(a.fill ?? "black")) throw new Error("svg: a filled polyline is not one saekit's charts use");
        const points = tag === "line" ? [num(a, "x1"), num(a, "y1"), num(a, "x2"), num(a, "y2")]
          : (a.points ?? "").split(/[\s,]+/).filter(Boolean).map(Number);
        if (stroke && points.length >= 4) draw().fill(strokePolygons(points, num(a, "stroke-width", 1)), stroke, num(a, "stroke-opacity", 1));
        break;
      }
      case "text":
        if (selfClosing) break;
        text = { attrs: a, content: "" };
        break;
      default:
        throw new Error(`svg: <${tag}> is not an element saekit's charts use`);
    }
  }
  return draw();
}

function drawText(image: Raster, a: Attrs, content: string, inheritedSize: number): void {
  const size = a["font-size"] !== undefined ? Number(a["font-size"]) : inheritedSize;
  const fill = parseColor(a.fill ?? "black");
  if (!fill || content.length === 0) return;
  const anchor = a["text-anchor"] ?? "start";
  const width = textWidth(content, size);
  const shift = anchor === "middle" ? width / 2 : anchor === "end" ? width : 0;
  const { map, angle } = transformOf(a.transform);
  const [x, y] = map(Number(a.x ?? 0) - shift, Number(a.y ?? 0));
  const polygons: Polygon[] = textPolygons(content, size, x, y, angle);
  image.fill(polygons, fill);
}
