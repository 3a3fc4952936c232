#!/usr/bin/python3
"""Peer for `saekit bench train --matmul-precision medium`: the TopK SAE step of
../shared/bench/peer_topk_sae.py with its encoder's linear layer under PyTorch's CPU bf16
autocast (oneDNN's bf16 GEMM, forward and backward) while the selection, the sparse
decoder, the parameters, their gradients and Adam stay float32, as in saekit's medium
precision, whose only dense products in a TopK step are the encoder's. (Autocast over the
whole step fails: embedding_bag refuses bf16 weights per sample with a float32 table.)

The shared peer runs it: its bench() builds the model below and its output gains
"autocast". Options and output as peer_topk_sae.py's; run with Debian's /usr/bin/python3.
"""
import importlib.util
import os

import torch
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "peer_topk_sae", os.path.join(here, "..", "..", "shared", "bench", "peer_topk_sae.py"))
peer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peer)


class AutocastEncoderSAE(peer.TopKSAE):
    """peer.TopKSAE with the encoder's product on bfloat16; the rest is its forward as is."""

    def forward(self, x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mu = F.linear(x - self.b_dec, self.W_enc, self.b_enc)
        mu = mu.float()
        if self.variational:
            self.kl = 0.5 * mu.pow(2).sum(-1).mean()
            mu = mu + torch.randn_like(mu)
        pre = F.relu(mu)
        vals, idx = pre.topk(self.k, dim=-1, sorted=False)
        if self.sparse_decoder:
            x_hat = F.embedding_bag(idx, self.W_dec, per_sample_weights=vals, mode="sum")
        else:
            z = torch.zeros_like(pre).scatter_(-1, idx, vals)
            x_hat = z @ self.W_dec
        return x_hat + self.b_dec


float32_bench = peer.bench


def autocast_bench(*args):
    return {**float32_bench(*args), "autocast": "bfloat16"}


# peer.bench() builds its model, and peer.main() calls bench, by these module-level names.
peer.TopKSAE = AutocastEncoderSAE
peer.bench = autocast_bench

if __name__ == "__main__":
    peer.main()
