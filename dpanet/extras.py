"""Which install profile (extra) provides a module, and the one line a command prints when one is missing.

The base install (``pip install dpanet``) is the torch-free runtime; each extra of pyproject.toml adds a
stage. :data:`EXTRA_MODULES` mirrors those lists (tests/test_extras.py checks it against the package
metadata). Torch-free.
"""

from __future__ import annotations

EXTRA_MODULES = {
    "torch": ("torch",),
    "export": ("torch", "onnxscript", "onnx_ir"),
    "calib": ("torch", "onnxscript", "onnx_ir"),
    "train": ("torch", "tensorboard"),
    "tensorrt": ("tensorrt", "pycuda"),
    "serve": ("pytriton", "tritonclient"),
}
"""The top-level modules each extra adds to the base install (its own and those of extras it includes)."""

BASE_MODULES = (
    "numpy",
    "cv2",
    "tqdm",
    "skimage",
    "onnx",
    "onnxruntime",
    "onnxruntime_extensions",
    "polygraphy",
    "scipy_openblas32",
)
"""Top-level modules of the base install's requirements."""

COMMAND_EXTRAS = {
    "export": "export",
    "calibrate": "calib",
    "train": "train",
    "bench export": "export",
    "bench train": "train",
}
"""Commands whose job needs more than the smallest extra holding the missing module: ``export``
without torch asks for ``[export]`` at once, not ``[torch]`` and then ``[export]``."""


def pip_command(extra: str) -> str:
    """The command that adds ``extra`` (works for an installed dpanet, editable or not)."""
    return f"pip install 'dpanet[{extra}]'"


def extra_for(module: str, command: str = "") -> str | None:
    """The extra to install for the missing top-level ``module`` when running ``command`` ('' for the
    base install), or None for a module dpanet does not know (a bug, not a missing profile)."""
    if module in BASE_MODULES:
        return ""
    wanted = COMMAND_EXTRAS.get(command)
    if wanted is not None and module in EXTRA_MODULES[wanted]:
        return wanted
    holders = [extra for extra, modules in EXTRA_MODULES.items() if module in modules]
    return min(holders, key=lambda extra: len(EXTRA_MODULES[extra])) if holders else None


def missing_module_message(error: ModuleNotFoundError, command: str = "") -> str | None:
    """One line naming the missing module and the extra to install, or None for a module no profile
    provides."""
    module = (error.name or "").partition(".")[0]
    extra = extra_for(module, command)
    if extra is None:
        return None
    if extra == "":
        return f"{module} is missing, though every dpanet install requires it: reinstall dpanet"
    return f"{module} is not installed: this needs the {extra} extra ({pip_command(extra)})"
