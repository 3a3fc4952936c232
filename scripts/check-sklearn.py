#!/usr/bin/env python3
"""Checks saekit's logistic-regression probe against scikit-learn's, which SAEBench trains.

SAEBench's sparse probing, TPP, SCR and absorption fit LogisticRegression (L2, lbfgs) probes;
saekit fits the same objective with its own L-BFGS (src/eval/logistic-regression.ts). Both
minimise one strictly convex function, so both should land on one solution. For probes the
shape of SAEBench's (activations of a few hundred dimensions, or the top-k latents; C = 1
and other strengths; unbalanced classes with class_weight="balanced"; nearly separable data,
where the solution leans on the penalty) it checks that both solvers, run to a tight
tolerance, meet at one solution (weights within 1e-3 of the largest: saekit's products with
the data are float32, which bounds how far it can refine), so the objective is the same;
and that at the defaults (tol 1e-4 both, what the evals run) the two probes' test accuracies
agree to within three test rows (of 500 to 2000: points on the boundary that two
approximations of one optimum may place either side); how far above the optimum's objective each default fit
stops is printed beside.

Needs a Python with scikit-learn and numpy (python3 -m venv /tmp/hf && /tmp/hf/bin/pip
install scikit-learn) and a built checkout (npm ci):
  /tmp/hf/bin/python scripts/check-sklearn.py
Not part of `npm test`, which must not need Python.
"""
import json
import os
import sys
import tempfile

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

from saekit_node import run_js

FIT_JS = """
const [root, dir, optsJson] = process.argv.slice(1);
const { readFileSync } = await import("node:fs");
const lr = await import(root + "/dist/eval/logistic-regression.js");
const o = JSON.parse(optsJson);
const read = (name, T) => { const b = readFileSync(dir + "/" + name); return new T(b.buffer, b.byteOffset, b.byteLength / T.BYTES_PER_ELEMENT); };
const X = read("x.f32", Float32Array), y = read("y.u8", Uint8Array), Xt = read("xt.f32", Float32Array), yt = read("yt.u8", Uint8Array);
const weights = o.balanced ? { sampleWeight: lr.balancedSampleWeights(y) } : {};
// At saekit's defaults (what its evals run), and to a tight tolerance (the optimum itself).
const fits = [{}, { tol: 1e-8, maxIter: 100000 }].map((extra) => lr.fitLogisticRegression(X, o.n, o.p, y, { C: o.C, ...weights, ...extra }));
process.stdout.write(JSON.stringify(fits.map((fit) => ({ w: Array.from(fit.w), b: fit.b, converged: fit.converged,
  iterations: fit.iterations, accuracy: lr.probeAccuracy(fit, Xt, o.nt, o.p, yt) }))));
"""

# (name, rows, dimensions, C, balanced, share of positives, separation of the classes)
CASES = [
    ("residual-stream probe, d = 512, C = 1", 4000, 512, 1.0, False, 0.5, 0.15),
    ("top-k latents, k = 16, C = 1", 4000, 16, 1.0, False, 0.5, 0.5),
    ("weak penalty, C = 100", 2000, 64, 100.0, False, 0.5, 0.3),
    ("strong penalty, C = 0.01", 2000, 64, 0.01, False, 0.5, 0.3),
    ("unbalanced (10% positive), class_weight balanced", 3000, 128, 1.0, True, 0.1, 0.2),
    ("nearly separable, d = 256", 1000, 256, 1.0, False, 0.5, 1.0),
]


def data(rng, n, p, positive, direction):
    """Gaussian classes whose means differ along `direction`; nonnegative features, as SAE
    latents are, for small p."""
    y = (rng.random(n) < positive).astype(np.uint8)
    x = rng.standard_normal((n, p)) + np.outer(2.0 * y - 1.0, direction)
    if p <= 16:
        x = np.maximum(x, 0)
    return x.astype(np.float32), y


def objective(x, y, w, b, C, sample_weight):
    """J(w, b) = (1/n) sum_i c_i log(1 + exp(-s_i (x_i . w + b))) + ||w||^2 / (2 C n): scikit-learn's, over n."""
    z = x.astype(np.float64) @ w + b
    s = 2.0 * y - 1.0
    return float((sample_weight * np.logaddexp(0, -s * z)).mean() + w @ w / (2 * C * len(y)))


def main():
    rng = np.random.default_rng(0)
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for name, n, p, C, balanced, positive, separation in CASES:
            direction = rng.standard_normal(p)
            direction *= separation * np.sqrt(p) / 4 / np.linalg.norm(direction)
            x, y = data(rng, n, p, positive, direction)
            xt, yt = data(rng, n // 2, p, positive, direction)
            for file, array in (("x.f32", x), ("y.u8", y), ("xt.f32", xt), ("yt.u8", yt)):
                array.tofile(os.path.join(tmp, file))
            opts = json.dumps({"n": n, "p": p, "nt": n // 2, "C": C, "balanced": balanced})
            ours, ours_tight = json.loads(run_js(FIT_JS, tmp, opts))
            weight = "balanced" if balanced else None
            ref = LogisticRegression(C=C, class_weight=weight).fit(x.astype(np.float64), y)  # its defaults (tol 1e-4)
            tight = LogisticRegression(C=C, class_weight=weight, tol=1e-12, max_iter=100000).fit(x.astype(np.float64), y)
            sw = np.where(y == 1, len(y) / (2 * y.sum()), len(y) / (2 * (len(y) - y.sum()))) if balanced else np.ones(len(y))
            optimum = objective(x, y, tight.coef_[0], tight.intercept_[0], C, sw)
            # The same objective: both solvers, run to a tight tolerance, meet.
            scale = np.abs(tight.coef_[0]).max()
            meet = max(np.abs(np.array(ours_tight["w"]) - tight.coef_[0]).max(), abs(ours_tight["b"] - tight.intercept_[0])) / scale
            # At the defaults (tol 1e-4 both) each stops short of the optimum: how far, reported.
            gap_ours = objective(x, y, np.array(ours["w"]), ours["b"], C, sw) - optimum
            gap_ref = objective(x, y, ref.coef_[0], ref.intercept_[0], C, sw) - optimum
            acc_ref = float((ref.predict(xt) == yt).mean())
            rows_apart = round(abs(ours["accuracy"] - acc_ref) * len(yt))
            ok = ours["converged"] and meet <= 1e-3 and rows_apart <= 3
            failed |= not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name}: tight fits meet to {meet:.1e} of the largest weight"
                  f"{'' if ours_tight['converged'] else ' (saekit stopped short of tol 1e-8: its products are float32)'}; at the defaults the objective "
                  f"is {gap_ours / optimum:.1e} of its value above the optimum ({ours['iterations']} iterations), scikit-learn's {gap_ref / optimum:.1e}; "
                  f"test accuracy {ours['accuracy']:.4f} vs {acc_ref:.4f} ({rows_apart} of {len(yt)} rows apart)", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
