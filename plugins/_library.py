"""Where the built libraries are: ``DPANET_PLUGINS_LIB_DIR`` if set, else ``dpanet/plugins/lib``.

``pip install`` (editable or not) builds them with CMake and installs them into the package's
``lib`` folder; a standalone CMake build can be used by pointing ``DPANET_PLUGINS_LIB_DIR`` at its
build directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from dpanet.errors import DPANetError

ENV_VAR = "DPANET_PLUGINS_LIB_DIR"
LIBRARIES = {
    "cpu": "libdpanet_cpu.so",
    "cuda": "libdpanet_cuda.so",
    # one plugin library per TensorRT major version (docs/plugins.md)
    "tensorrt10": "libdpanet_trt10_plugins.so",
    "tensorrt11": "libdpanet_trt11_plugins.so",
}


class LibraryNotBuilt(DPANetError):
    """A kernel library is missing: the build skipped it (see the CMake message) or never ran."""


def search_dirs() -> list[Path]:
    if os.environ.get(ENV_VAR):
        return [Path(os.environ[ENV_VAR])]
    import dpanet.plugins

    # An editable install lists both the source folder and the installed one here.
    return [Path(p) / "lib" for p in dpanet.plugins.__path__]


def library_path(kind: str) -> Path:
    name = LIBRARIES[kind]
    dirs = search_dirs()
    for d in dirs:
        if (d / name).is_file():
            return d / name
    where = ", ".join(str(d) for d in dirs)
    if kind.startswith("tensorrt"):
        # the usual cause: pip's tensorrt wheels carry no headers, so the install skipped the library
        raise LibraryNotBuilt(
            f"{name} was not built (looked in {where}): the install found no TensorRT {kind[8:]} headers "
            "(pip's tensorrt has none). Build it against TensorRT's headers (the tar package's include/, "
            "JetPack's /usr/include/aarch64-linux-gnu): `pip install -e . -C "
            "cmake.define.TensorRT_ROOT=/path/to/TensorRT`, or a CMake build with "
            f"{ENV_VAR} set to its folder (docs/plugins.md)"
        )
    raise LibraryNotBuilt(
        f"{name} was not built (looked in {where}). Reinstall with `pip install -e .` and read the "
        f"'dpanet: not building' lines of its CMake output (pip -v), or set {ENV_VAR} to a CMake build "
        "directory (docs/plugins.md)"
    )
