/**
 * VAEase's synthetic union-of-subspaces experiment ("Sparse Autoencoders, Again?", the
 * authors' ComposedLinearDataset): data lies on a union of low-dimensional linear
 * subspaces of R^d. Each subspace i picks subspaceDim random coordinates S_i of a d-dim
 * latent; a sample picks a subspace uniformly and is x = A[:, S_i] z with z ~ N(0, I) and
 * A a fixed d x d Gaussian matrix. A model that adapts its sparsity to the input should use
 * subspaceDim active dimensions for every sample (4 by default).
 */
import { GeneratedSource, structureRng } from "./generated-source.js";
import { withDefaults } from "../util/defaults.js";

export interface SubspacesOptions {
  d: number;
  nSubspaces: number;
  subspaceDim: number;
  seed: number;
}

export const SUBSPACES_DEFAULTS: SubspacesOptions = { d: 40, nSubspaces: 3, subspaceDim: 4, seed: 0 };

export class SubspacesSource extends GeneratedSource {
  readonly d: number;
  readonly opts: SubspacesOptions;
  /** The mixing matrix A [d, d]. */
  readonly A: Float32Array;
  /** Latent coordinates of each subspace. */
  readonly coords: number[][];

  constructor(options: Partial<SubspacesOptions> = {}) {
    const o = withDefaults(SUBSPACES_DEFAULTS, options);
    super(o.seed + 1); // the sample stream; the fixed structure below has a stream of its own
    if (!(o.subspaceDim >= 1 && o.subspaceDim <= o.d && o.nSubspaces >= 1)) {
      throw new RangeError("subspaces: need 1 <= subspaceDim <= d and nSubspaces >= 1");
    }
    this.opts = o;
    this.d = o.d;
    const setup = structureRng(o.seed);
    this.A = setup.fillNormal(new Float32Array(o.d * o.d));
    this.coords = Array.from({ length: o.nSubspaces }, () => {
      const all = Array.from({ length: o.d }, (_, i) => i);
      return setup.shuffle(all).slice(0, o.subspaceDim).sort((a, b) => a - b);
    });
  }

  /** Fills out with samples; labels (if given) receives each sample's subspace. */
  sample(out: Float32Array, batch: number, labels?: Int32Array): void {
    const d = this.d;
    for (let b = 0; b < batch; b++) {
      const i = this.rng.int(this.opts.nSubspaces);
      if (labels) labels[b] = i;
      const row = out.subarray(b * d, (b + 1) * d);
      row.fill(0);
      for (const c of this.coords[i]!) {
        const z = this.rng.normal();
        for (let r = 0; r < d; r++) row[r]! += this.A[r * d + c]! * z;
      }
    }
  }

  describe(): Record<string, unknown> {
    return { kind: "synthetic:subspaces", ...this.opts };
  }
}
