#!/usr/bin/env python3
"""
Writes src/analysis/plot-font.ts: the outlines of printable ASCII (32..126) and a few
other characters (EXTRA) from a TrueType font, flattened to polygons, for the PNG renderer (src/analysis/raster.ts).
Run once by a maintainer when the glyphs should change; npm ci and npm test never run it.

    python3 scripts/make-plot-font.py /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf

Reads the TrueType tables directly (head, hhea, hmtx, maxp, cmap format 4, loca, glyf with
simple and composite glyphs), so it needs nothing beyond the standard library. Quadratic
curves are cut into 4 segments; coordinates are kept in 1/256 em, y up from the baseline.
"""
import struct
import sys

UNITS_OUT = 256
# Beyond ASCII: what chart titles and labels are likely to hold.
EXTRA = "–—‘’“”…·×±µ°²³≈≤≥−→αβγδεθλμσ"
CURVE_SEGMENTS = 4


def read_font(path):
    data = open(path, "rb").read()
    num_tables = struct.unpack_from(">H", data, 4)[0]
    tables = {}
    for i in range(num_tables):
        tag, _, offset, length = struct.unpack_from(">4sIII", data, 12 + 16 * i)
        tables[tag.decode("latin-1")] = (offset, length)
    return data, tables


def parse(path):
    data, t = read_font(path)
    head = t["head"][0]
    units_per_em = struct.unpack_from(">H", data, head + 18)[0]
    long_loca = struct.unpack_from(">h", data, head + 50)[0] == 1
    num_glyphs = struct.unpack_from(">H", data, t["maxp"][0] + 4)[0]
    hhea = t["hhea"][0]
    ascender, descender = struct.unpack_from(">hh", data, hhea + 4)
    n_metrics = struct.unpack_from(">H", data, hhea + 34)[0]
    hmtx = t["hmtx"][0]

    def advance(g):
        return struct.unpack_from(">H", data, hmtx + 4 * min(g, n_metrics - 1))[0]

    loca = t["loca"][0]

    def glyph_range(g):
        if long_loca:
            a, b = struct.unpack_from(">II", data, loca + 4 * g)
        else:
            a, b = (2 * v for v in struct.unpack_from(">HH", data, loca + 2 * g))
        return t["glyf"][0] + a, b - a

    def contours(g):
        """The glyph's closed contours as lists of (x, y, on_curve)."""
        start, length = glyph_range(g)
        if length == 0:
            return []
        n = struct.unpack_from(">h", data, start)[0]
        p = start + 10
        if n >= 0:
            ends = struct.unpack_from(">%dH" % n, data, p)
            p += 2 * n
            p += 2 + struct.unpack_from(">H", data, p)[0]  # skip the instructions
            count = ends[-1] + 1 if n else 0
            flags = []
            while len(flags) < count:
                f = data[p]
                p += 1
                flags.append(f)
                if f & 8:
                    flags.extend([f] * data[p])
                    p += 1
            coords = []
            for short_bit, same_bit in ((2, 16), (4, 32)):
                v, out = 0, []
                for f in flags:
                    if f & short_bit:
                        d = data[p]
                        p += 1
                        v += d if f & same_bit else -d
                    elif not f & same_bit:
                        v += struct.unpack_from(">h", data, p)[0]
                        p += 2
                    out.append(v)
                coords.append(out)
            points = [(x, y, bool(f & 1)) for x, y, f in zip(coords[0], coords[1], flags)]
            result, first = [], 0
            for e in ends:
                result.append(points[first:e + 1])
                first = e + 1
            return result
        # Composite: components placed by an offset (and optionally scaled).
        result = []
        while True:
            flags, component = struct.unpack_from(">HH", data, p)
            p += 4
            if flags & 1:
                dx, dy = struct.unpack_from(">hh", data, p)
                p += 4
            else:
                dx, dy = struct.unpack_from(">bb", data, p)
                p += 2
            if not flags & 2:
                raise SystemExit(f"glyph {g}: composite placed by point matching is not handled")
            a, b, c, d = 1.0, 0.0, 0.0, 1.0
            if flags & 8:
                a = d = struct.unpack_from(">h", data, p)[0] / 16384
                p += 2
            elif flags & 0x40:
                a, d = (v / 16384 for v in struct.unpack_from(">hh", data, p))
                p += 4
            elif flags & 0x80:
                a, b, c, d = (v / 16384 for v in struct.unpack_from(">hhhh", data, p))
                p += 8
            for contour in contours(component):
                result.append([(a * x + c * y + dx, b * x + d * y + dy, on) for x, y, on in contour])
            if not flags & 0x20:
                return result

    cmap = t["cmap"][0]
    n_sub = struct.unpack_from(">H", data, cmap + 2)[0]
    char_to_glyph = {}
    for i in range(n_sub):
        platform, encoding, offset = struct.unpack_from(">HHI", data, cmap + 4 + 8 * i)
        sub = cmap + offset
        if platform == 3 and encoding == 1 and struct.unpack_from(">H", data, sub)[0] == 4:
            segs = struct.unpack_from(">H", data, sub + 6)[0] // 2
            ends = struct.unpack_from(">%dH" % segs, data, sub + 14)
            starts = struct.unpack_from(">%dH" % segs, data, sub + 16 + 2 * segs)
            deltas = struct.unpack_from(">%dh" % segs, data, sub + 16 + 4 * segs)
            range_at = sub + 16 + 6 * segs
            ranges = struct.unpack_from(">%dH" % segs, data, range_at)
            for code in list(range(32, 127)) + [ord(c) for c in EXTRA]:
                for s in range(segs):
                    if starts[s] <= code <= ends[s]:
                        if ranges[s] == 0:
                            gid = (code + deltas[s]) & 0xFFFF
                        else:
                            at = range_at + 2 * s + ranges[s] + 2 * (code - starts[s])
                            gid = struct.unpack_from(">H", data, at)[0]
                            gid = (gid + deltas[s]) & 0xFFFF if gid else 0
                        char_to_glyph[code] = gid
                        break
    if len(char_to_glyph) != 95 + len(EXTRA):
        raise SystemExit("the font has no Windows Unicode (3, 1) format 4 cmap covering ASCII and the extra characters")
    assert all(g < num_glyphs for g in char_to_glyph.values())
    return units_per_em, ascender, descender, char_to_glyph, advance, contours


def flatten(contour):
    """A TrueType contour (on/off-curve points) as a polygon."""
    pts = list(contour)
    # Implied on-curve points between two off-curve ones.
    full = []
    for i, (x, y, on) in enumerate(pts):
        nx, ny, non = pts[(i + 1) % len(pts)]
        full.append((x, y, on))
        if not on and not non:
            full.append(((x + nx) / 2, (y + ny) / 2, True))
    start = next(i for i, p in enumerate(full) if p[2])
    full = full[start:] + full[:start]
    out = [full[0][:2]]
    i = 1
    while i <= len(full):
        x, y, on = full[i % len(full)]
        if on:
            out.append((x, y))
            i += 1
        else:
            x0, y0 = out[-1]
            x2, y2, _ = full[(i + 1) % len(full)]
            for s in range(1, CURVE_SEGMENTS + 1):
                u = s / CURVE_SEGMENTS
                out.append(((1 - u) ** 2 * x0 + 2 * u * (1 - u) * x + u * u * x2,
                            (1 - u) ** 2 * y0 + 2 * u * (1 - u) * y + u * u * y2))
            i += 2
    return out[:-1]  # the last point repeats the first


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    upem, ascender, descender, char_to_glyph, advance, contours = parse(path)
    q = lambda v: round(v * UNITS_OUT / upem)
    def glyph(code):
        g = char_to_glyph[code]
        polys = []
        for contour in contours(g):
            poly = [q(c) for p in flatten(contour) for c in p]
            if len(poly) >= 6:
                polys.append("[" + ",".join(str(v) for v in poly) + "]")
        return f"[{q(advance(g))}, [{','.join(polys)}]]"

    lines = [f"  {glyph(code)}, // {chr(code)!r}" for code in range(32, 127)]
    extra = [f"  [{ord(c)}, {glyph(ord(c))}], // {c}" for c in EXTRA]
    out = "src/analysis/plot-font.ts"
    with open(out, "w") as f:
        f.write(f"""/**
 * Glyph outlines of printable ASCII for the PNG renderer (raster.ts), written by
 * scripts/make-plot-font.py from DejaVu Sans (fonts-dejavu-core); do not edit by hand.
 * Per character from " " (32) to "~" (126): [advance, polygons], each polygon a flat list
 * x0, y0, x1, y1, ... in 1/{UNITS_OUT} em, y up from the baseline, filled non-zero.
 *
 * The outlines are derived from DejaVu Sans, whose notice follows.
 * Copyright (c) 2003 by Bitstream, Inc. All Rights Reserved. Bitstream Vera is a trademark
 * of Bitstream, Inc. DejaVu changes are in public domain.
 * Permission is hereby granted, free of charge, to any person obtaining a copy of the fonts
 * accompanying this license ("Fonts") and associated documentation files (the "Font
 * Software"), to reproduce and distribute the Font Software, including without limitation
 * the rights to use, copy, merge, publish, distribute, and/or sell copies of the Font
 * Software, and to permit persons to whom the Font Software is furnished to do so, subject
 * to the following conditions:
 * The above copyright and trademark notices and this permission notice shall be included
 * in all copies of one or more of the Font Software typefaces.
 * The Font Software may be modified, altered, or added to, and in particular the designs of
 * glyphs or characters in the Fonts may be modified and additional glyphs or characters may
 * be added to the Fonts, only if the fonts are renamed to names not containing either the
 * words "Bitstream" or the word "Vera".
 * This License becomes null and void to the extent applicable to Fonts or Font Software
 * that has been modified and is distributed under the "Bitstream Vera" names.
 * The Font Software may be sold as part of a larger software package but no copy of one or
 * more of the Font Software typefaces may be sold by itself.
 * THE FONT SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
 * INCLUDING BUT NOT LIMITED TO ANY WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
 * PURPOSE AND NONINFRINGEMENT OF COPYRIGHT, PATENT, TRADEMARK, OR OTHER RIGHT. IN NO EVENT
 * SHALL BITSTREAM OR THE GNOME FOUNDATION BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 * LIABILITY, INCLUDING ANY GENERAL, SPECIAL, INDIRECT, INCIDENTAL, OR CONSEQUENTIAL
 * DAMAGES, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF THE
 * USE OR INABILITY TO USE THE FONT SOFTWARE OR FROM OTHER DEALINGS IN THE FONT SOFTWARE.
 * Except as contained in this notice, the names of Gnome, the Gnome Foundation, and
 * Bitstream Inc., shall not be used in advertising or otherwise to promote the sale, use or
 * other dealings in this Font Software without prior written authorization from the Gnome
 * Foundation or Bitstream Inc., respectively.
 */

/** Units per em of the outlines. */
export const GLYPH_UNITS = {UNITS_OUT};
/** Ascender and descender (negative), in GLYPH_UNITS. */
export const GLYPH_ASCENT = {q(ascender)};
export const GLYPH_DESCENT = {q(descender)};

/** [advance, polygons] for characters 32..126. */
export const GLYPHS: ReadonlyArray<readonly [number, readonly (readonly number[])[]]> = [
""")
        f.write("\n".join(lines))
        f.write("\n];\n\n/** [advance, polygons] of a few characters beyond ASCII, by code point. */\n")
        f.write("export const EXTRA_GLYPHS: ReadonlyMap<number, readonly [number, readonly (readonly number[])[]]> = new Map([\n")
        f.write("\n".join(extra))
        f.write("\n]);\n")
    print(f"wrote {out}")


main()
