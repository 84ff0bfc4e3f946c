// Thread count and a parallel loop over independent tasks (OpenMP when the build has it).
#pragma once

#include <cstdint>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace dpanet::cpu {

// 0 or less: the OpenMP default (OMP_NUM_THREADS or all cores).
inline int resolve_threads(int requested) {
#if defined(_OPENMP)
    return requested > 0 ? requested : omp_get_max_threads();
#else
    (void)requested;
    return 1;
#endif
}

inline int thread_index() {
#if defined(_OPENMP)
    return omp_get_thread_num();
#else
    return 0;
#endif
}

// Calls body(task) for task in [0, count) on `threads` threads, dynamically scheduled.
template <class Body>
void parallel_for(int64_t count, int threads, Body body) {
#if defined(_OPENMP)
#pragma omp parallel for num_threads(threads) schedule(dynamic)
#endif
    for (int64_t task = 0; task < count; ++task) {
        body(task);
    }
    (void)threads;
}

}  // namespace dpanet::cpu
