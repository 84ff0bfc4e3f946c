"""PyTorch side of DPANet: the model, its ops, checkpoints, training and benchmarks (needs torch)."""
