# Cross build for aarch64 Linux (Jetson) with Debian's cross compiler, JetPack 6's gcc 11:
#   apt-get install g++-11-aarch64-linux-gnu qemu-user
#   cmake -S plugins -B build/aarch64 --toolchain plugins/cmake/aarch64-linux-gnu.cmake -DDPANET_BUILD_CUDA=OFF \
#         -DDPANET_OPENBLAS_INCLUDE_DIR=... -DDPANET_OPENBLAS_LIBRARY=...   (an unpacked aarch64 scipy-openblas32 wheel)
# ctest then runs the tests under qemu-aarch64 (docs/plugins.md). DPANET_AARCH64_GXX names another compiler.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
if(NOT DPANET_AARCH64_GXX)
  set(DPANET_AARCH64_GXX aarch64-linux-gnu-g++-11)
endif()
set(CMAKE_CXX_COMPILER ${DPANET_AARCH64_GXX})
set(DPANET_AARCH64_SYSROOT /usr/aarch64-linux-gnu CACHE PATH "aarch64 libraries for qemu-aarch64 -L")
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L ${DPANET_AARCH64_SYSROOT})
set(CMAKE_FIND_ROOT_PATH ${DPANET_AARCH64_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
