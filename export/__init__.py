"""ONNX export of DPANet (needs torch)."""
