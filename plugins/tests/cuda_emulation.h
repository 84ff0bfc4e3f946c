// Runs the CUDA kernels of src/cuda/*_kernel.cuh on the CPU, for testing on machines without a GPU:
// one block at a time, each of its threads a std::thread, __syncthreads() a std::barrier, and
// __shared__ arrays function-local statics (shared by the block's threads, reused by the next
// block). Include this before the kernel headers; compile as host C++20 with the CUDA headers.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <barrier>
#include <memory>
#include <thread>
#include <vector>

#undef __shared__
#define __shared__ static
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif

using std::max;
using std::min;

inline thread_local dim3 threadIdx;
inline thread_local dim3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;
inline std::unique_ptr<std::barrier<>> block_barrier;

inline void __syncthreads() { block_barrier->arrive_and_wait(); }

// kernel<<<grid, block>>>(args...) on the CPU.
template <class Kernel, class... Args>
void emulate_launch(dim3 grid, dim3 block, Kernel kernel, Args... args) {
    const unsigned threads = block.x * block.y * block.z;
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                block_barrier = std::make_unique<std::barrier<>>(threads);
                std::vector<std::thread> pool;
                for (unsigned t = 0; t < threads; ++t) {
                    pool.emplace_back([=] {
                        threadIdx = dim3(t % block.x, t / block.x % block.y, t / (block.x * block.y));
                        blockIdx = dim3(bx, by, bz);
                        blockDim = block;
                        gridDim = grid;
                        kernel(args...);
                        // threads that return early leave the barrier's count to the others
                        block_barrier->arrive_and_drop();
                    });
                }
                for (auto& t : pool) t.join();
            }
}
