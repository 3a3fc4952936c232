import { kernels } from '../dist/core/kernels.js'
import { markFired, meanL0 } from '../dist/sae/sparse-code.js'
const k = kernels()
const B = 4096, m = 16384, density = 0.5
const nnzPer = Math.round(m * density)
const rowPtr = new Int32Array(B + 1), idx = new Int32Array(B * nnzPer), val = new Float32Array(B * nnzPer)
for (let b = 0; b < B; b++) { rowPtr[b + 1] = (b + 1) * nnzPer; for (let e = 0; e < nnzPer; e++) { idx[b * nnzPer + e] = (e * 2 + (b & 1)); val[b * nnzPer + e] = Math.random() } }
const code = { batch: B, m, rowPtr, idx, val }
const fired = new Uint8Array(m), counts = new Float64Array(m)
for (let r = 0; r < 5; r++) {
  let t0 = performance.now(); markFired(code, fired); const n = idx.length; for (let e = 0; e < n; e++) if (val[e] !== 0) counts[idx[e]] += 1; meanL0(code); const js = performance.now() - t0
  t0 = performance.now(); const c = k.codeFirings(B, m, rowPtr, idx, val, fired, counts); const nat = performance.now() - t0
  console.log('js three passes ms', js.toFixed(1), 'native codeFirings ms', nat.toFixed(1), c / B)
}
const X = new Float32Array(B * m), out = new Float32Array(idx.length)
for (let r = 0; r < 3; r++) { const t0 = performance.now(); k.gatherEntries(X, B, m, rowPtr, idx, out); console.log('gatherEntries ms', (performance.now() - t0).toFixed(1)) }
