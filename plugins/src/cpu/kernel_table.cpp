// The kernels of the instruction set this file is compiled for (kernels.h).
#include "kernels.h"

#define DPANET_STRINGIFY(x) #x
#define DPANET_NAME(x) DPANET_STRINGIFY(x)

namespace dpanet::cpu::DPANET_CPU_ISA {

Kernels const table{DPANET_NAME(DPANET_CPU_ISA), &correlation, &deform_conv, &deform_conv_workspace_bytes};

}  // namespace dpanet::cpu::DPANET_CPU_ISA
