#!/usr/bin/python3
"""Peer reference: scikit-learn's TSNE (method="barnes_hut", angle 0.5, or "exact") on the
recipe of `saekit bench tsne`: n unit vectors in R^d, each one of 50 Gaussian centres plus
noise of a third of its scale, normalised, as an SAE's decoder directions cluster. Same
settings as saekit's map: 2 components, perplexity 30, PCA init, learning rate "auto",
early exaggeration 12, the given iterations.

Needs scikit-learn (Debian: `apt-get install -y python3-sklearn`; run it with
/usr/bin/python3). Prints one JSON line: {"bench", "impl", "method", "init", "n", "d",
"iterations", "threads", "s", "kl", "kl_sklearn"} with the median seconds of the timed
runs after one warm-up run; kl is the final KL divergence computed as saekit computes it
(exact normaliser), kl_sklearn sklearn's own kl_divergence_ (Barnes-Hut estimate).

usage: peer_tsne.py [--n 10000] [--d 512] [--iterations 1000] [--method barnes_hut] [--threads 2] [--runs 5]
                    [--points FILE.f32]
"""
import argparse
import json
import os
import statistics
import time


def clustered_directions(n, d, clusters, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d))
    x = centres[rng.integers(0, clusters, n)] + rng.standard_normal((n, d)) / 3
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_kl(x, y, perplexity):
    """KL(P || Q) as saekit reports it: P over each point's 3 x perplexity + 1 nearest
    neighbours (sklearn's own _joint_probabilities_nn), Q with its normaliser Z summed
    exactly over all pairs (sklearn's kl_divergence_ uses the Barnes-Hut estimate of Z)."""
    import numpy as np
    from sklearn.manifold._t_sne import _joint_probabilities_nn
    from sklearn.neighbors import NearestNeighbors

    n = len(x)
    k = min(n - 1, int(3 * perplexity + 1))
    dist = NearestNeighbors(n_neighbors=k).fit(x).kneighbors_graph(mode="distance")
    dist.data **= 2
    P = _joint_probabilities_nn(dist, perplexity, 0).tocoo()
    y = y.astype(np.float64)
    Z = 0.0
    for s in range(0, n, 500):
        d2 = ((y[s:s + 500, None, :] - y[None, :, :]) ** 2).sum(-1)
        Z += (1 / (1 + d2)).sum() - d2.shape[0]  # less the diagonal's w = 1
    q = 1 / (1 + ((y[P.row] - y[P.col]) ** 2).sum(1)) / Z
    keep = P.data > 0
    return float((P.data[keep] * np.log(P.data[keep] / np.maximum(q[keep], 1e-12))).sum())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--d", type=int, default=512)
    p.add_argument("--iterations", type=int, default=1000)
    p.add_argument("--method", default="barnes_hut", choices=["barnes_hut", "exact"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--points", help="raw float32 [n, d] points to use instead of drawing them (bench/compare.mjs passes saekit's)")
    a = p.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    from sklearn.manifold import TSNE

    if a.points:
        import numpy as np

        x = np.fromfile(a.points, dtype=np.float32).reshape(a.n, a.d)
    else:
        x = clustered_directions(a.n, a.d, 50, 0)
    times, kl, y = [], 0.0, None
    for run in range(a.runs + 1):
        t0 = time.perf_counter()
        model = TSNE(n_components=2, perplexity=30, early_exaggeration=12, learning_rate="auto", n_iter=a.iterations,
                     init="pca", method=a.method, angle=0.5, random_state=0, n_jobs=a.threads)
        y = model.fit_transform(x)
        if run > 0:
            times.append(time.perf_counter() - t0)
        kl = float(model.kl_divergence_)
    print(json.dumps({"bench": "tsne", "impl": "sklearn", "method": a.method, "init": "pca", "n": a.n, "d": a.d,
                      "iterations": a.iterations, "threads": a.threads, "s": round(statistics.median(times), 3),
                      "kl": round(exact_kl(x, y, 30), 4), "kl_sklearn": round(kl, 4)}))


if __name__ == "__main__":
    main()
