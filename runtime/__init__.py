"""Torch-free inference: image I/O, pre/post-processing and ONNX Runtime / TensorRT backends."""
