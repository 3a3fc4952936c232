/**
 * A quadtree over points in the plane, for the repulsive half of the t-SNE gradient in
 * O(n log n) (Barnes & Hut 1986, as van der Maaten 2014 applies it to t-SNE): from point i,
 * a cell of side s whose centre of mass lies at distance r stands in for all its N points
 * when s < angle * r, contributing N w and N w^2 (y_i - c) with w = 1 / (1 + r^2); cells
 * closer than that are opened. angle = 0 opens every cell and gives the exact sums.
 *
 * Cells are built by splitting a square in four until each holds one point (or, for points
 * that coincide, until MAX_DEPTH); only non-empty quadrants become nodes.
 */

const MAX_DEPTH = 48;

/** Where the cell of a point holding angle <= this never stands in for that point itself. */
export const MAX_ANGLE = 0.7;

export function checkAngle(angle: number): void {
  if (!(angle >= 0 && angle <= MAX_ANGLE)) throw new RangeError(`Barnes-Hut angle ${angle} must be in [0, ${MAX_ANGLE}]`);
}

export class QuadTree {
  /** Node fields, by node id; the root is node 0. */
  private comX: Float64Array;
  private comY: Float64Array;
  private side: Float64Array;
  private count: Int32Array;
  /** Children are the nodes firstChild .. firstChild + childCount - 1; a leaf has none. */
  private firstChild: Int32Array;
  private childCount: Int32Array;
  /** A leaf's points are order[lo .. lo + count). */
  private lo: Int32Array;
  private nodes = 0;
  /** The points in tree order: neighbours in the plane sit together (visit them in this order for locality). */
  readonly order: Int32Array;
  private readonly scratch: Int32Array;
  private readonly stack = new Int32Array(4 * MAX_DEPTH + 8);

  /** Y: [n, 2] coordinates, read again by repulsion (do not change them in between). */
  constructor(private readonly Y: Float64Array, private readonly n: number) {
    const capacity = 2 * n + 16;
    this.comX = new Float64Array(capacity);
    this.comY = new Float64Array(capacity);
    this.side = new Float64Array(capacity);
    this.count = new Int32Array(capacity);
    this.firstChild = new Int32Array(capacity);
    this.childCount = new Int32Array(capacity);
    this.lo = new Int32Array(capacity);
    this.order = Int32Array.from({ length: n }, (_, i) => i);
    this.scratch = new Int32Array(n);
    if (n === 0) return;
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (let i = 0; i < n; i++) {
      minX = Math.min(minX, Y[2 * i]!); maxX = Math.max(maxX, Y[2 * i]!);
      minY = Math.min(minY, Y[2 * i + 1]!); maxY = Math.max(maxY, Y[2 * i + 1]!);
    }
    if (!Number.isFinite(minX + maxX + minY + maxY)) throw new RangeError("QuadTree: a coordinate is not finite");
    const side = Math.max(maxX - minX, maxY - minY, 1e-12) * (1 + 1e-9);
    this.nodes = 1;
    this.build(0, 0, n, (minX + maxX) / 2, (minY + maxY) / 2, side, 0);
  }

  private grow(): void {
    const widen = <T extends Float64Array | Int32Array>(a: T): T => {
      const b = new (a.constructor as { new(len: number): T })(a.length * 2);
      b.set(a);
      return b;
    };
    this.comX = widen(this.comX); this.comY = widen(this.comY); this.side = widen(this.side);
    this.count = widen(this.count); this.firstChild = widen(this.firstChild);
    this.childCount = widen(this.childCount); this.lo = widen(this.lo);
  }

  /** Fills node `id`, the square of `side` centred at (cx, cy) holding order[lo, hi). */
  private build(id: number, lo: number, hi: number, cx: number, cy: number, side: number, depth: number): void {
    const { Y, order } = this;
    let sx = 0, sy = 0;
    for (let p = lo; p < hi; p++) { sx += Y[2 * order[p]!]!; sy += Y[2 * order[p]! + 1]!; }
    const count = hi - lo;
    this.comX[id] = sx / count;
    this.comY[id] = sy / count;
    this.side[id] = side;
    this.count[id] = count;
    this.lo[id] = lo;
    this.childCount[id] = 0;
    if (count === 1 || depth >= MAX_DEPTH) return;

    // Counting sort of the range by quadrant (bit 0: right half, bit 1: upper half).
    const quadrant = (i: number) => (Y[2 * i]! >= cx ? 1 : 0) | (Y[2 * i + 1]! >= cy ? 2 : 0);
    const starts = [0, 0, 0, 0, 0];
    for (let p = lo; p < hi; p++) starts[quadrant(order[p]!) + 1]!++;
    for (let q = 0; q < 4; q++) starts[q + 1]! += starts[q]!;
    const fill = starts.slice(0, 4);
    for (let p = lo; p < hi; p++) this.scratch[lo + fill[quadrant(order[p]!)]!++] = order[p]!;
    order.set(this.scratch.subarray(lo, hi), lo);

    const children = [0, 1, 2, 3].filter((q) => starts[q + 1]! > starts[q]!);
    while (this.nodes + children.length > this.comX.length) this.grow();
    const first = this.nodes;
    this.nodes += children.length;
    this.firstChild[id] = first;
    this.childCount[id] = children.length;
    const half = side / 2;
    children.forEach((q, c) => {
      this.build(first + c, lo + starts[q]!, lo + starts[q + 1]!,
        cx + (q & 1 ? half : -half) / 2, cy + (q & 2 ? half : -half) / 2, half, depth + 1);
    });
  }

  /**
   * The repulsion on point i: adds sum_{j != i} w_ij^2 (y_i - y_j) to force[2i], force[2i+1]
   * and returns sum_{j != i} w_ij, both summed over cells as the angle allows.
   */
  repulsion(i: number, angle: number, force: Float64Array): number {
    checkAngle(angle);
    if (this.n < 2) return 0;
    const { Y, order, stack } = this;
    const xi = Y[2 * i]!, yi = Y[2 * i + 1]!;
    const angle2 = angle * angle;
    let z = 0, fx = 0, fy = 0;
    let top = 0;
    stack[top++] = 0;
    while (top > 0) {
      const node = stack[--top]!;
      const children = this.childCount[node]!;
      if (children === 0) {
        // A leaf: its points one by one (coinciding points at MAX_DEPTH can be several).
        const lo = this.lo[node]!;
        for (let p = lo; p < lo + this.count[node]!; p++) {
          const j = order[p]!;
          if (j === i) continue;
          const dx = xi - Y[2 * j]!, dy = yi - Y[2 * j + 1]!;
          const w = 1 / (1 + dx * dx + dy * dy);
          z += w;
          fx += w * w * dx;
          fy += w * w * dy;
        }
        continue;
      }
      const dx = xi - this.comX[node]!, dy = yi - this.comY[node]!;
      const d2 = dx * dx + dy * dy;
      const side = this.side[node]!;
      if (side * side < angle2 * d2) {
        // Far enough: the cell's points act from their centre of mass. (A cell holding i
        // is never this far: i lies within side * sqrt(2) of the centre, and angle^2 < 1/2.)
        const count = this.count[node]!;
        const w = 1 / (1 + d2);
        z += count * w;
        fx += count * w * w * dx;
        fy += count * w * w * dy;
        continue;
      }
      const first = this.firstChild[node]!;
      for (let c = 0; c < children; c++) stack[top++] = first + c;
    }
    force[2 * i]! += fx;
    force[2 * i + 1]! += fy;
    return z;
  }
}
