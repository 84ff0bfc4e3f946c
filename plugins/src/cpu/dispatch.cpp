// Picks the CPU kernels' instruction set once (kernels.h). The variants are listed by the build:
// DPANET_CPU_VARIANTS_X86 when the AVX2 and AVX-512 variants are compiled in beside the baseline.
#include <cstdlib>
#include <cstring>

#include "kernels.h"

#if defined(DPANET_CPU_NATIVE)
namespace dpanet::cpu::native {
extern Kernels const table;
}
#else
namespace dpanet::cpu::baseline {
extern Kernels const table;
}
#endif
#if defined(DPANET_CPU_VARIANTS_X86)
namespace dpanet::cpu::avx2 {
extern Kernels const table;
}
namespace dpanet::cpu::avx512 {
extern Kernels const table;
}
#endif

namespace dpanet::cpu {
namespace {

struct Variant {
    Kernels const* kernels;
    bool supported;
};

// Widest first. The checks match the flags each variant is compiled with (plugins/CMakeLists.txt);
// __builtin_cpu_supports also checks that the OS saves the vector registers (XGETBV).
Kernels const& choose() {
#if defined(DPANET_CPU_VARIANTS_X86)
    __builtin_cpu_init();
    const bool avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool avx512 = avx2_fma && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
    const Variant variants[] = {{&avx512::table, avx512}, {&avx2::table, avx2_fma}, {&baseline::table, true}};
#elif defined(DPANET_CPU_NATIVE)
    const Variant variants[] = {{&native::table, true}};
#else
    const Variant variants[] = {{&baseline::table, true}};
#endif
    char const* requested = std::getenv("DPANET_CPU_KERNELS");
    if (requested != nullptr) {
        for (Variant const& v : variants) {
            if (v.supported && std::strcmp(requested, v.kernels->isa) == 0) return *v.kernels;
        }
    }
    for (Variant const& v : variants) {
        if (v.supported) return *v.kernels;
    }
    return *variants[0].kernels;  // not reached: the last variant is always supported
}

}  // namespace

Kernels const& kernels() {
    static Kernels const& chosen = choose();
    return chosen;
}

}  // namespace dpanet::cpu
