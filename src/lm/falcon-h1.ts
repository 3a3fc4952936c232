/**
 * Falcon-H1 (TII; modeling_falcon_h1.py) checkpoints, read as the Llama family's (llama.ts)
 * are. Its layers run Mamba-2 beside attention (config.ts: mamba.parallel), and its muP
 * multipliers scale the inputs or outputs of nearly every projection:
 *
 *   attention:  q, k, v from h * attention_in_multiplier, k times key_multiplier, its output
 *               times attention_out_multiplier;
 *   Mamba-2:    in_proj from h * ssm_in_multiplier, its output's z, x, B, C and dt sections
 *               times ssm_multipliers[0..4] (the mup_vector), out_proj's times ssm_out_multiplier;
 *   MLP:        gate_proj's output times mlp_multipliers[0], down_proj's times [1];
 *   and the embeddings and the logits (config.ts: embedScale, logitScale).
 *
 * Each projection is linear, so its multipliers fold into its weight rows (and bias) as they
 * load, and the forward, the hooks and the backward run Llama's code on them unchanged; a
 * folded matrix held as bfloat16 is the float32 product rounded once. Its tensors keep
 * Falcon-H1's names: feed_forward for mlp, pre_ff_layernorm for the MLP's input norm,
 * final_layernorm for the final one.
 */
import { Tensor } from "../core/tensor.js";
import { innerWidth, type MambaShape } from "./mamba2.js";
import { matrixAs } from "./model.js";
import type { WeightReader } from "./weight-reader.js";

/** FalconH1Config's multipliers (what embedScale and logitScale do not carry). */
export interface FalconH1Multipliers {
  attentionIn: number;
  key: number;
  attentionOut: number;
  ssmIn: number;
  ssmOut: number;
  /** ssm_multipliers: in_proj's z, x, B, C and dt sections. */
  ssm: number[];
  mlpGate: number;
  mlpDown: number;
}

/** Falcon-H1's name for a Llama-layout tensor. */
function falconH1Name(name: string): string {
  return name.replace(/\.mlp\./, ".feed_forward.").replace(/\.post_attention_layernorm\./, ".pre_ff_layernorm.")
    .replace(/^model\.norm\./, "model.final_layernorm.");
}

/**
 * The factor each row of the tensor `name` (a Llama-layout name) is multiplied by, or null
 * where none is: a weight's rows are a projection's outputs, a bias is scaled as its outputs
 * are (an input multiplier scales the weight alone).
 */
function rowScale(name: string, m: FalconH1Multipliers, s: MambaShape): ((row: number) => number) | null {
  const part = /\.(self_attn\.[qkvo]_proj|mamba\.(?:in|out)_proj|mlp\.(?:gate|down)_proj)\.(weight|bias)$/.exec(name);
  if (!part) return null;
  const [, proj, kind] = part;
  const weight = kind === "weight";
  const constant = (v: number) => () => v;
  switch (proj) {
    case "self_attn.q_proj":
    case "self_attn.v_proj":
      return weight ? constant(m.attentionIn) : null;
    case "self_attn.k_proj":
      return constant(m.key * (weight ? m.attentionIn : 1));
    case "self_attn.o_proj":
      return constant(m.attentionOut);
    case "mamba.out_proj":
      return constant(m.ssmOut);
    case "mlp.gate_proj":
      return constant(m.mlpGate);
    case "mlp.down_proj":
      return constant(m.mlpDown);
    default: {
      // in_proj's rows: z (inner), x (inner), B and C (groups x dState each), dt (heads).
      const inner = innerWidth(s), gN = s.groups * s.dState;
      const ends = [inner, 2 * inner, 2 * inner + gN, 2 * inner + 2 * gN];
      const input = weight ? m.ssmIn : 1;
      return (row) => input * m.ssm[ends.filter((end) => row >= end).length]!;
    }
  }
}

/** The rows of `data` (each `width` values) times their factors, as a new array. */
function scaleRows(data: Float32Array, width: number, scale: (row: number) => number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r * width < data.length; r++) {
    const f = scale(r);
    for (let i = r * width; i < (r + 1) * width; i++) out[i] = data[i]! * f;
  }
  return out;
}

/** `r` as Llama's loader reads it: Falcon-H1's names, and its multipliers folded into the weights. */
export function falconH1Reader(r: WeightReader, m: FalconH1Multipliers, s: MambaShape): WeightReader {
  const width = (shape: number[]) => shape.slice(1).reduce((a, b) => a * b, 1);
  return {
    source: r.source,
    has: (name) => r.has(falconH1Name(name)),
    shapeOf: (name) => r.shapeOf(falconH1Name(name)),
    get: (name, shape) => {
      const t = r.get(falconH1Name(name), shape), scale = rowScale(name, m, s);
      return scale ? new Tensor(t.shape, scaleRows(t.data, width(shape), scale)) : t;
    },
    getMatrix: (name, shape, dtype) => {
      const scale = rowScale(name, m, s);
      if (!scale) return r.getMatrix(falconH1Name(name), shape, dtype);
      const W = r.getMatrix(falconH1Name(name), shape, "f32") as Float32Array;
      return matrixAs(scaleRows(W, width(shape), scale), dtype);
    },
    names: () => r.names(),
    finish: (ignorable) => r.finish(ignorable),
  };
}
