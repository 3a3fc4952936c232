#!/usr/bin/python3
"""Peer reference: scikit-learn's TSNE (method="barnes_hut", angle 0.5, or "exact") on the
recipe of `saekit bench tsne`: n unit vectors in R^d, each one of 50 Gaussian centres plus
noise of a third of its scale, normalised, as an SAE's decoder directions cluster. Same
settings as saekit's map: 2 components, perplexity 30, random init, learning rate "auto",
early exaggeration 12, the given iterations.

Needs scikit-learn (Debian: `apt-get install -y python3-sklearn`; run it with
/usr/bin/python3). Prints one JSON line: {"bench", "impl", "method", "n", "d",
"iterations", "threads", "s", "kl"} with the median seconds of the timed runs after one
warm-up run.

usage: peer_tsne.py [--n 10000] [--d 512] [--iterations 1000] [--method barnes_hut] [--threads 2] [--runs 5]
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--d", type=int, default=512)
    p.add_argument("--iterations", type=int, default=1000)
    p.add_argument("--method", default="barnes_hut", choices=["barnes_hut", "exact"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    from sklearn.manifold import TSNE

    x = clustered_directions(a.n, a.d, 50, 0)
    times, kl = [], 0.0
    for run in range(a.runs + 1):
        t0 = time.perf_counter()
        model = TSNE(n_components=2, perplexity=30, early_exaggeration=12, learning_rate="auto", n_iter=a.iterations,
                     init="random", method=a.method, angle=0.5, random_state=0, n_jobs=a.threads)
        model.fit_transform(x)
        if run > 0:
            times.append(time.perf_counter() - t0)
        kl = float(model.kl_divergence_)
    print(json.dumps({"bench": "tsne", "impl": "sklearn", "method": a.method, "n": a.n, "d": a.d,
                      "iterations": a.iterations, "threads": a.threads, "s": round(statistics.median(times), 3),
                      "kl": round(kl, 4)}))


if __name__ == "__main__":
    main()
