/**
 * PNG files from a Raster: 8-bit RGB, one IDAT compressed by zlib, every row with the "Sub"
 * filter (chart backgrounds and fills are flat, which it turns into runs of zeros).
 */
import { deflateSync } from "node:zlib";
import { concatBytes } from "../core/bytes.js";
import type { Raster } from "./raster.js";
import { svgToRaster } from "./svg-raster.js";

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO 3309, as PNG chunks use it) of the bytes. */
export function crc32(bytes: Uint8Array, crc = 0xffffffff): number {
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return crc;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, (crc32(out.subarray(4, 8 + data.length)) ^ 0xffffffff) >>> 0);
  return out;
}

export function encodePng(image: Raster): Uint8Array {
  const { width, height, rgb } = image;
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace
  const stride = 3 * width;
  const filtered = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const row = rgb.subarray(y * stride, (y + 1) * stride);
    const at = y * (stride + 1);
    filtered[at] = 1; // Sub: each byte minus the same channel of the pixel to its left
    for (let i = 0; i < stride; i++) filtered[at + 1 + i] = (row[i]! - (i >= 3 ? row[i - 3]! : 0)) & 0xff;
  }
  return concatBytes([SIGNATURE, chunk("IHDR", header), chunk("IDAT", deflateSync(filtered, { level: 9 })), chunk("IEND", new Uint8Array(0))]);
}

/** A PNG file of one of saekit's SVG charts (svg-raster.ts). */
export function svgToPng(svg: string): Uint8Array {
  return encodePng(svgToRaster(svg));
}
