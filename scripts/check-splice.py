#!/usr/bin/env python3
"""Checks `saekit eval` (CE loss recovered, KL score, ...) against the same splice done in PyTorch on transformers' model.

SAEBench and SAELens judge an SAE by splicing its reconstruction into the model: the CE loss
clean, with the SAE, and with the hook zero-ablated, CE loss recovered = (CE_zero - CE_sae) /
(CE_zero - CE_clean), and the KL divergence from the clean predictions with the SAE and
zero-ablated, KL score = (KL_zero - KL_sae) / KL_zero. This script builds a small Llama with
transformers (random weights, saved with save_pretrained), has saekit draw contexts from it
(`pretokenize --dataset sampled:N`), writes a TopK SAE for blocks.0.hook_resid_post in
SAELens' format from Python (cfg.json + sae_weights.safetensors, as SAELens saves one), runs
`saekit eval` on those contexts, and computes every number again in float64 with the model's
own forward: the SAE applied as SAELens' TopK SAE does (x - b_dec, W_enc, b_enc, the top k
kept and ReLU'd, W_dec, b_dec), spliced at every position but each context's first (BOS),
as saekit's eval does by default; CE and KL (KL(clean || spliced), F.kl_div's convention)
averaged over the positions that have a next token; and the SAE's FVU, cosine, norm ratio,
MSE and L0 on the activations it replaced. It fails if any figure differs by more than 1e-4
(relative for the CE losses, absolute for the rest).

Needs a Python with torch, transformers and safetensors (python3 -m venv /tmp/hf &&
/tmp/hf/bin/pip install torch transformers safetensors) and a built checkout (npm ci):
  /tmp/hf/bin/python scripts/check-splice.py
Not part of `npm test`, which must not need Python.
"""
import json
import os
import sys
import tempfile

import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM

from saekit_node import saekit

HOOK = "blocks.0.hook_resid_post"
CTX, CONTEXTS, D, D_SAE, K = 32, 24, 32, 128, 8


def write_model(folder, gen):
    config = AutoConfig.for_model("llama", vocab_size=96, hidden_size=D, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                  intermediate_size=64, max_position_embeddings=64, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            p.copy_(noise * 0.25 if p.dim() >= 2 else 1 + 0.1 * noise)
    model.save_pretrained(folder)
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float64, attn_implementation="eager").eval()


def write_sae(folder, gen):
    """A TopK SAE in SAELens' format, with weights that reconstruct the hook only roughly, so
    that every figure sits well away from its extremes."""
    os.makedirs(folder)
    W_dec = torch.randn(D_SAE, D, generator=gen)
    W_dec /= W_dec.norm(dim=1, keepdim=True)
    weights = {"W_enc": (W_dec.T * 1.5).contiguous(), "W_dec": W_dec.contiguous(), "b_enc": torch.randn(D_SAE, generator=gen) * 0.1,
               "b_dec": torch.randn(D, generator=gen) * 0.1}
    save_file(weights, os.path.join(folder, "sae_weights.safetensors"))
    cfg = {"architecture": "topk", "d_in": D, "d_sae": D_SAE, "k": K, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
           "normalize_activations": "none", "reshape_activations": "none",
           "metadata": {"model_name": "tiny-llama", "hook_name": HOOK, "context_size": CTX, "prepend_bos": True}}
    with open(os.path.join(folder, "cfg.json"), "w") as f:
        json.dump(cfg, f)
    return {k: v.double() for k, v in weights.items()}


def sae_reconstruction(x, w):
    """SAELens' TopK SAE: the k largest pre-activations kept (ReLU'd), decoded."""
    pre = (x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    top = pre.topk(K, dim=-1)
    f = torch.zeros_like(pre).scatter(-1, top.indices, F.relu(top.values))
    return f @ w["W_dec"] + w["b_dec"]


def spliced_logits(model, tokens, replace):
    """The model's logits with the output of layer 0 (blocks.0.hook_resid_post) replaced by
    replace(activation) at every position but the first."""
    def hook(_module, _args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        hidden = hidden.clone()
        hidden[:, 1:] = replace(hidden[:, 1:])
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden
    handle = model.model.layers[0].register_forward_hook(hook)
    try:
        with torch.no_grad():
            return model(tokens).logits
    finally:
        handle.remove()


def main():
    gen = torch.Generator().manual_seed(0)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, sae_dir, data = os.path.join(tmp, "model"), os.path.join(tmp, "sae"), os.path.join(tmp, "contexts.jsonl")
        model = write_model(model_dir, gen)
        weights = write_sae(sae_dir, gen)
        saekit("pretokenize", "--model", model_dir, "--dataset", f"sampled:{CONTEXTS}:7", "--tokens", str(CONTEXTS * CTX),
            "--ctx", str(CTX), "--out", data)
        contexts = [json.loads(line)["input_ids"] for line in open(data)]
        got = json.loads(saekit("eval", "--model", model_dir, "--dataset", data, "--sae", sae_dir, "--tokens", str(CONTEXTS * (CTX - 1)),
                             "--ctx", str(CTX), "--batch", "8"))
        tokens = torch.tensor(contexts)
        with torch.no_grad():
            clean = model(tokens).logits
        sae = spliced_logits(model, tokens, lambda x: sae_reconstruction(x, weights))
        zero = spliced_logits(model, tokens, torch.zeros_like)
        targets = tokens[:, 1:].reshape(-1)
        ce = lambda logits: F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), targets).item()
        clean_logp = F.log_softmax(clean[:, :-1], -1)
        kl = lambda logits: F.kl_div(F.log_softmax(logits[:, :-1], -1), clean_logp, log_target=True, reduction="none").sum(-1).mean().item()
        want = {"ce_loss_clean": ce(clean), "ce_loss_with_sae": ce(sae), "ce_loss_zero_ablated": ce(zero),
                "kl_div_with_sae": kl(sae), "kl_div_zero_ablated": kl(zero)}
        want["ce_loss_recovered"] = (want["ce_loss_zero_ablated"] - want["ce_loss_with_sae"]) / (want["ce_loss_zero_ablated"] - want["ce_loss_clean"])
        want["kl_div_score"] = (want["kl_div_zero_ablated"] - want["kl_div_with_sae"]) / want["kl_div_zero_ablated"]
        # The SAE's own metrics on the activations it replaced (every position but the first).
        acts = []
        handle = model.model.layers[0].register_forward_hook(lambda _m, _a, output: acts.append((output[0] if isinstance(output, tuple) else output)[:, 1:].reshape(-1, D)))
        with torch.no_grad():
            model(tokens)
        handle.remove()
        x = acts[0]
        x_hat = sae_reconstruction(x, weights)
        pre = (x - weights["b_dec"]) @ weights["W_enc"] + weights["b_enc"]
        f = F.relu(pre.topk(K, dim=-1).values)
        reconstruction = {"fvu": ((x - x_hat) ** 2).sum().item() / ((x - x.mean(0)) ** 2).sum().item(),
                          "cossim": F.cosine_similarity(x, x_hat, dim=-1).mean().item(),
                          "l2_ratio": (x_hat.norm(dim=-1) / x.norm(dim=-1)).mean().item(),
                          "mse": ((x - x_hat) ** 2).mean().item()}
        want.update({f"reconstruction.{k}": v for k, v in reconstruction.items()})
        want["sparsity.l0"] = (f != 0).sum(-1).double().mean().item()
        got.update({f"reconstruction.{k}": got["reconstruction"][k] for k in reconstruction})
        got["sparsity.l0"] = got["sparsity"]["l0"]
        failed = got["contexts"] != CONTEXTS
        print(f"{'ok  ' if not failed else 'FAIL'} contexts: saekit {got['contexts']}, {CONTEXTS} drawn")
        for key, value in want.items():
            relative = key.startswith("ce_loss") and key != "ce_loss_recovered"
            diff = abs(got[key] - value) / (abs(value) if relative else 1)
            ok = diff <= 1e-4
            failed |= not ok
            print(f"{'ok  ' if ok else 'FAIL'} {key}: saekit {got[key]:.6f}, PyTorch {value:.6f} ({'relative ' if relative else ''}difference {diff:.1e})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
