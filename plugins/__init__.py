"""C++/CUDA kernels and TensorRT plugins for DPANet's correlation and DCNv2 ops."""
