#!/usr/bin/env python3
"""Checks saekit's t-SNE and k-means (the vSAE paper's map of an SAE's latents) against scikit-learn's.

`saekit analyze` lays the latents' decoder directions out with t-SNE and colours them by
k-means clusters (src/analysis/tsne.ts, kmeans.ts), written after sklearn.manifold.TSNE and
sklearn.cluster.KMeans. On points shaped like decoder rows (clusters of directions in R^32,
plus unclustered ones) this compares, piece by piece, with scikit-learn's own code:

- the affinities P: the exact method's dense P (sklearn's _joint_probabilities, the same
  bisection on each row's precision to the perplexity) and Barnes-Hut's sparse P over the
  3 x perplexity + 1 nearest neighbours (_joint_probabilities_nn on sklearn's neighbours);
- at one embedding, KL(P || Q) and its gradient (sklearn's _kl_divergence), and the
  Barnes-Hut gradient at angle 0 (exact sums) and at sklearn's 0.5 (both approximations of
  the one exact gradient: each is held to it, as far as sklearn's own is);
- whole runs: the KL of saekit's final layout beside TSNE's kl_divergence_ from the same
  PCA start, exact and Barnes-Hut (two optimisations of one objective: saekit's must end
  within 10% of scikit-learn's);
- k-means: saekit's clustering is a fixed point of Lloyd's algorithm (KMeans started from
  its centres changes no label), its inertia the same sum; over seeds 0 to 9 its mean
  inertia within 5% of KMeans' at its defaults (one greedy k-means++ start each).

Needs a Python with scikit-learn and numpy (python3 -m venv /tmp/hf && /tmp/hf/bin/pip
install scikit-learn) and a built checkout (npm ci):
  /tmp/hf/bin/python scripts/check-tsne.py
Not part of `npm test`, which must not need Python.
"""
import json
import os
import sys
import tempfile

import numpy as np
import sklearn
from scipy.sparse import csr_matrix
from scipy.spatial.distance import pdist, squareform
from sklearn.cluster import KMeans
from sklearn.manifold import TSNE
from sklearn.manifold._t_sne import _joint_probabilities, _joint_probabilities_nn, _kl_divergence, _kl_divergence_bh
from sklearn.neighbors import NearestNeighbors

from saekit_node import run_js

PIECES_JS = """
const [root, dir, optsJson] = process.argv.slice(1);
const { readFileSync } = await import("node:fs");
const t = await import(root + "/dist/analysis/tsne.js");
const o = JSON.parse(optsJson);
const read = (name) => { const b = readFileSync(dir + "/" + name); return new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8); };
const X = read("x.f64"), Y = read("y.f64");
const n = o.n, dim = o.dim;
const P = t.tsneAffinities(X, n, dim, o.perplexity);
const S = t.sparseTsneAffinities(X, n, dim, o.perplexity);
const grad = new Float64Array(2 * n), bh0 = new Float64Array(2 * n), bh5 = new Float64Array(2 * n);
t.exactGradient(P, Y, n, 1, grad);
t.barnesHutGradient(S, Y, n, 1, 0, bh0);
t.barnesHutGradient(S, Y, n, 1, 0.5, bh5);
process.stdout.write(JSON.stringify({ P: Array.from(P), sparse: { rowPtr: Array.from(S.rowPtr), col: Array.from(S.col), val: Array.from(S.val) },
  kl: t.tsneKl(P, Y, n), grad: Array.from(grad), bh0: Array.from(bh0), bh5: Array.from(bh5), neighbors: t.neighborCount(o.perplexity, n) }));
"""

RUN_JS = """
const [root, dir, optsJson] = process.argv.slice(1);
const { readFileSync } = await import("node:fs");
const t = await import(root + "/dist/analysis/tsne.js");
const km = await import(root + "/dist/analysis/kmeans.js");
const o = JSON.parse(optsJson);
const b = readFileSync(dir + "/x.f64");
const X = new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8);
const out = {};
for (const method of ["exact", "barnes_hut"]) {
  const r = t.tsne(X, o.n, o.dim, { method, perplexity: o.perplexity });
  out[method] = { kl: r.kl, init: Array.from(t.pcaLayout(X, o.n, o.dim)) };
}
const k = km.kMeans(X, o.n, o.dim, o.k, 0);
out.kmeans = { labels: Array.from(k.labels), centers: Array.from(k.centers), inertia: k.inertia,
  inertias: Array.from({ length: 10 }, (_, seed) => km.kMeans(X, o.n, o.dim, o.k, seed).inertia) };
process.stdout.write(JSON.stringify(out));
"""


def points(rng, n, dim, clusters):
    """Unit directions in R^dim: most in tight clusters around random centres, a fifth scattered."""
    centres = rng.standard_normal((clusters, dim))
    which = rng.integers(0, clusters, n)
    x = centres[which] + 0.35 * rng.standard_normal((n, dim))
    scattered = rng.random(n) < 0.2
    x[scattered] = rng.standard_normal((int(scattered.sum()), dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def relative(a, b):
    """max |a - b| / max |b|."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def main():
    print(f"scikit-learn {sklearn.__version__}")
    rng = np.random.default_rng(0)
    failed = False

    def report(ok, text):
        nonlocal failed
        failed |= not ok
        print(f"{'ok  ' if ok else 'FAIL'} {text}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        # The pieces, at n = 400: dense P is n^2.
        n, dim, perplexity = 400, 32, 30.0
        x = points(rng, n, dim, 8)
        y = rng.standard_normal((n, 2)) * 3
        x.astype(np.float64).tofile(os.path.join(tmp, "x.f64"))
        y.astype(np.float64).tofile(os.path.join(tmp, "y.f64"))
        ours = json.loads(run_js(PIECES_JS, tmp, json.dumps({"n": n, "dim": dim, "perplexity": perplexity})))

        # Exact P: sklearn bisects on float32 squared distances, saekit on float64 ones.
        dist2 = squareform(pdist(x, "sqeuclidean"))
        p_ref = squareform(_joint_probabilities(dist2, perplexity, 0))
        p_ours = np.array(ours["P"]).reshape(n, n)
        err = relative(p_ours, p_ref)
        report(err < 1e-5, f"exact affinities P [{n}, {n}]: within {err:.1e} of the largest")

        # Barnes-Hut P over sklearn's neighbours (its kNN, distances squared as TSNE squares them).
        k = ours["neighbors"]
        report(k == min(n - 1, int(3 * perplexity + 1)), f"Barnes-Hut keeps {k} neighbours per point, as sklearn")
        knn = NearestNeighbors(n_neighbors=k, metric="euclidean").fit(x).kneighbors_graph(mode="distance")
        knn.data **= 2
        s_ref = _joint_probabilities_nn(knn, perplexity, 0).tocsr()
        s_ref.sort_indices()
        sp = ours["sparse"]
        s_ours = csr_matrix((sp["val"], sp["col"], sp["rowPtr"]), shape=(n, n))
        same_pattern = (s_ours != 0).astype(int).sum() == (s_ref != 0).astype(int).sum() and abs((s_ours != 0).astype(int) - (s_ref != 0).astype(int)).sum() == 0
        err = relative(s_ours.toarray(), s_ref.toarray())
        report(same_pattern and err < 1e-5, f"Barnes-Hut affinities: {s_ref.nnz} entries, the same pairs: {same_pattern}, within {err:.1e} of the largest")

        # KL and its gradient at one layout (degrees of freedom 1, as TSNE's for two components), of saekit's P.
        kl_ref, grad_ref = _kl_divergence(y.ravel(), squareform(p_ours, checks=False), 1, n, 2)
        kl_err = abs(ours["kl"] - kl_ref) / abs(kl_ref)
        grad_err = relative(ours["grad"], grad_ref)
        report(kl_err < 1e-6 and grad_err < 1e-6, f"KL(P || Q) {kl_ref:.6f} within {kl_err:.1e}, its exact gradient within {grad_err:.1e}")

        # Barnes-Hut gradients: at angle 0 the exact sums over the sparse P; at 0.5 each method's
        # approximation, measured against that exact gradient.
        s_ref32 = s_ref.astype(np.float32)
        _, bh0_ref = _kl_divergence_bh(y.ravel().astype(np.float32), s_ref32, 1, n, 2, angle=0.0, verbose=0)
        _, bh5_ref = _kl_divergence_bh(y.ravel().astype(np.float32), s_ref32, 1, n, 2, angle=0.5, verbose=0)
        err0 = relative(ours["bh0"], bh0_ref)
        report(err0 < 1e-4, f"Barnes-Hut gradient at angle 0 within {err0:.1e} of sklearn's (float32 there)")
        ours5, sk5 = relative(ours["bh5"], ours["bh0"]), relative(bh5_ref, bh0_ref)
        report(ours5 <= max(2 * sk5, 1e-3), f"at angle 0.5 saekit's is within {ours5:.1e} of the exact sums, sklearn's within {sk5:.1e}")

        # Whole runs and k-means, at n = 1000.
        n = 1000
        x = points(rng, n, dim, 10)
        x.astype(np.float64).tofile(os.path.join(tmp, "x.f64"))
        runs = json.loads(run_js(RUN_JS, tmp, json.dumps({"n": n, "dim": dim, "perplexity": perplexity, "k": 10})))
        for method in ("exact", "barnes_hut"):
            init = np.array(runs[method]["init"]).reshape(n, 2)
            ref = TSNE(n_components=2, perplexity=perplexity, method=method, init=init, learning_rate="auto",
                       max_iter=1000, random_state=0).fit(x)
            ratio = runs[method]["kl"] / ref.kl_divergence_
            report(ratio < 1.1, f"t-SNE ({method}, n = {n}): final KL {runs[method]['kl']:.4f}, sklearn's {ref.kl_divergence_:.4f} "
                   f"from the same start (ratio {ratio:.3f})")

        km = runs["kmeans"]
        labels, centers = np.array(km["labels"]), np.array(km["centers"]).reshape(-1, dim)
        inertia = float(((x - centers[labels]) ** 2).sum())
        again = KMeans(n_clusters=len(centers), init=centers, n_init=1, max_iter=300).fit(x)
        fixed = bool((again.labels_ == labels).all())
        report(fixed and abs(inertia - km["inertia"]) <= 1e-9 * inertia,
               f"k-means (k = {len(centers)}): a fixed point of Lloyd's algorithm: {fixed}; inertia {km['inertia']:.4f} (recomputed {inertia:.4f})")
        # One greedy k-means++ start each, as KMeans' default (n_init "auto"): seeds 0 to 9 of both.
        theirs = [KMeans(n_clusters=len(centers), random_state=seed).fit(x).inertia_ for seed in range(10)]
        ratio = np.mean(km["inertias"]) / np.mean(theirs)
        report(ratio <= 1.05, f"k-means over 10 seeds: mean inertia {np.mean(km['inertias']):.4f} (worst {max(km['inertias']):.4f}), "
               f"KMeans' {np.mean(theirs):.4f} (worst {max(theirs):.4f}); ratio {ratio:.3f}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
