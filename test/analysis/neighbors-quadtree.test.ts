/** The two pieces of Barnes-Hut t-SNE against brute force: exact nearest neighbours and the quadtree's repulsion. */
import { describe, expect, it } from "vitest";
import { mostOpposite, nearestNeighbors } from "../../src/analysis/neighbors.js";
import { MAX_ANGLE, QuadTree } from "../../src/core/quadtree.js";
import { Rng } from "../../src/core/rng.js";

function randomPoints(n: number, dim: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  return Float64Array.from({ length: n * dim }, () => rng.normal());
}

describe("nearest neighbours", () => {
  it("are every row's k nearest by brute force in float64, nearest first, ties by index, never the row itself", () => {
    const n = 203, dim = 19, k = 12;
    const points = randomPoints(n, dim, 1);
    // Exact duplicates (distance 0 to each other) and a point equidistant from two others.
    points.copyWithin(5 * dim, 7 * dim, 8 * dim);
    points.copyWithin(100 * dim, 7 * dim, 8 * dim);
    const nb = nearestNeighbors(points, n, dim, k, { block: 17 });
    for (let i = 0; i < n; i++) {
      const all = Array.from({ length: n }, (_, j) => {
        let s = 0;
        for (let c = 0; c < dim; c++) s += (points[i * dim + c]! - points[j * dim + c]!) ** 2;
        return { j, s };
      }).filter((e) => e.j !== i).sort((a, b) => a.s - b.s || a.j - b.j).slice(0, k);
      expect([...nb.index.subarray(i * k, (i + 1) * k)]).toEqual(all.map((e) => e.j));
      for (let q = 0; q < k; q++) expect(nb.dist2[i * k + q]).toBeCloseTo(all[q]!.s, 10);
    }
    // Row 7's two duplicates come first, at distance 0.
    expect([...nb.index.subarray(7 * k, 7 * k + 2)]).toEqual([5, 100]);
    expect(nb.dist2[7 * k]).toBe(0);
  });

  it("the most opposite row is the smallest dot product by brute force, never the row itself, a zero row included", () => {
    const n = 157, dim = 11;
    const points = randomPoints(n, dim, 4);
    points.fill(0, 0, dim); // row 0 is zero: every dot product 0, the lowest other index wins
    const op = mostOpposite(points, n, dim, { block: 13 });
    for (let i = 0; i < n; i++) {
      const dots = Array.from({ length: n }, (_, j) => {
        let s = 0;
        for (let c = 0; c < dim; c++) s += points[i * dim + c]! * points[j * dim + c]!;
        return { j, s };
      }).filter((e) => e.j !== i).sort((a, b) => a.s - b.s || a.j - b.j);
      expect(op.index[i]).toBe(dots[0]!.j);
      expect(op.dot[i]).toBeCloseTo(dots[0]!.s, 10);
    }
    expect(op.index[0]).toBe(1);
    expect(() => mostOpposite(points, 1, dim)).toThrow(/at least 2 rows/);
  });

  it("k = n - 1 lists every other point; k out of range is refused", () => {
    const points = randomPoints(6, 3, 2);
    const nb = nearestNeighbors(points, 6, 3, 5);
    for (let i = 0; i < 6; i++) expect([...nb.index.subarray(i * 5, i * 5 + 5)].sort()).toEqual([0, 1, 2, 3, 4, 5].filter((j) => j !== i));
    expect(() => nearestNeighbors(points, 6, 3, 6)).toThrow(/k = 6 needs 1 <= k <= n - 1 = 5/);
  });
});

/** sum_{j != i} w_ij and sum_{j != i} w_ij^2 (y_i - y_j), w = 1 / (1 + ||y_i - y_j||^2), directly. */
function bruteRepulsion(Y: Float64Array, n: number, i: number): { z: number; fx: number; fy: number } {
  let z = 0, fx = 0, fy = 0;
  for (let j = 0; j < n; j++) {
    if (j === i) continue;
    const dx = Y[2 * i]! - Y[2 * j]!, dy = Y[2 * i + 1]! - Y[2 * j + 1]!;
    const w = 1 / (1 + dx * dx + dy * dy);
    z += w; fx += w * w * dx; fy += w * w * dy;
  }
  return { z, fx, fy };
}

describe("quadtree repulsion", () => {
  const n = 500;
  const rng = new Rng(3);
  // Clustered points, as t-SNE makes them, plus a few that coincide.
  const Y = Float64Array.from({ length: 2 * n }, (_, c) => 10 * Math.floor((c >> 1) % 4) + rng.normal());
  Y.copyWithin(2 * 10, 2 * 20, 2 * 21);
  Y.copyWithin(2 * 11, 2 * 20, 2 * 21);

  it("angle 0 gives the exact sums", () => {
    const tree = new QuadTree(Y, n);
    const force = new Float64Array(2 * n);
    for (let i = 0; i < n; i++) {
      const z = tree.repulsion(i, 0, force);
      const b = bruteRepulsion(Y, n, i);
      expect(z).toBeCloseTo(b.z, 10);
      expect(force[2 * i]).toBeCloseTo(b.fx, 10);
      expect(force[2 * i + 1]).toBeCloseTo(b.fy, 10);
    }
  });

  it("angle 0.5 is close, and coarser at the largest angle allowed, which never lets a point's cell stand in for it", () => {
    const tree = new QuadTree(Y, n);
    const errors = [0.5, MAX_ANGLE].map((angle) => {
      const force = new Float64Array(2 * n);
      let zErr = 0, fErr = 0, fNorm = 0;
      for (let i = 0; i < n; i++) {
        const z = tree.repulsion(i, angle, force);
        const b = bruteRepulsion(Y, n, i);
        zErr = Math.max(zErr, Math.abs(z - b.z) / b.z);
        fErr += (force[2 * i]! - b.fx) ** 2 + (force[2 * i + 1]! - b.fy) ** 2;
        fNorm += b.fx ** 2 + b.fy ** 2;
      }
      return { zErr, fErr: Math.sqrt(fErr / fNorm) };
    });
    // Worst relative error of Z over the points, and the forces' relative RMS error.
    expect(errors[0]!.zErr).toBeGreaterThan(0);
    expect(errors[0]!.zErr).toBeLessThan(0.02);
    expect(errors[0]!.fErr).toBeLessThan(0.01);
    expect(errors[1]!.zErr).toBeGreaterThan(errors[0]!.zErr);
    expect(errors[1]!.zErr).toBeLessThan(0.05);
    expect(errors[1]!.fErr).toBeLessThan(0.03);
    expect(() => tree.repulsion(0, 0.8, new Float64Array(2 * n))).toThrow(/angle 0.8 must be in \[0, 0.7\]/);
  });
});
