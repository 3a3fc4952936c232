/**
 * Reusable scratch buffers. A training step at full size needs several [batch, d_sae]
 * arrays (hundreds of MB); allocating them every step would dominate the step and churn
 * the garbage collector, so each SAE keeps a workspace and asks it for named buffers of
 * a size, growing one only when a larger size is requested.
 */
export class Workspace {
  private readonly f32 = new Map<string, Float32Array>();
  private readonly i32 = new Map<string, Int32Array>();

  /** A Float32Array view of exactly n elements (contents unspecified unless zero). */
  float(name: string, n: number, zero = false): Float32Array {
    let buf = this.f32.get(name);
    if (!buf || buf.length < n) {
      buf = new Float32Array(Math.max(n, Math.ceil((buf?.length ?? 0) * 1.25)));
      this.f32.set(name, buf);
    }
    const view = buf.subarray(0, n);
    if (zero) view.fill(0);
    return view;
  }

  int(name: string, n: number): Int32Array {
    let buf = this.i32.get(name);
    if (!buf || buf.length < n) {
      buf = new Int32Array(Math.max(n, Math.ceil((buf?.length ?? 0) * 1.25)));
      this.i32.set(name, buf);
    }
    return buf.subarray(0, n);
  }

  /** How many floats the buffer `name` can hold without growing (0 if none yet). */
  capacity(name: string): number {
    return this.f32.get(name)?.length ?? 0;
  }

  clear(): void {
    this.f32.clear();
    this.i32.clear();
  }
}
