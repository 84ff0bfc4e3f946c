"""Our TensorRT plugin library in a process: loaded once, however many engines use it (torch-free).

``IPluginRegistry::loadLibrary`` "will fail and return nullptr if any of the plugins are already
registered" (NvInferRuntimeCommon.h, 10.3 and 11.1), so a second ``build()`` or backend in one
process cannot simply load the library again. :func:`load_plugin_library` asks the registry
first, the way TensorRT's ONNX parser will look the creators up (``get_creator(name, version,
namespace)``, in the Python API of both majors), and loads the library only when none of our
creators is there. The decision is :func:`loading_plan`, plain Python, tested without TensorRT.
"""

from __future__ import annotations

from pathlib import Path

from dpanet.contract import PLUGIN_NAMESPACE, PLUGIN_VERSION, PLUGINS
from dpanet.errors import DPANetError


def registered_creators(registry) -> dict[str, bool]:
    """For each of our plugins, whether ``registry`` has its creator where the ONNX parser looks."""
    return {
        name: registry.get_creator(name, PLUGIN_VERSION, PLUGIN_NAMESPACE) is not None for name in PLUGINS
    }


def loading_plan(registered: dict[str, bool], path: str | Path) -> str:
    """``"load"`` when none of our creators is registered, ``"loaded"`` when all are; raises
    :class:`DPANetError` when only some are (another library registered them: loading ours would fail)."""
    if all(registered.values()):
        return "loaded"
    if not any(registered.values()):
        return "load"
    present = ", ".join(name for name, there in registered.items() if there)
    missing = ", ".join(name for name, there in registered.items() if not there)
    raise DPANetError(
        f"{path}: cannot load the plugin library: {present} is already registered in namespace "
        f"{PLUGIN_NAMESPACE!r} by another library, {missing} is not; load only one dpanet plugin "
        "library per process (docs/plugins.md)"
    )


def load_plugin_library(trt, path: str | Path, errors: list[str] | None = None) -> bool:
    """Make our creators available to the ONNX parser and to deserialized engines; ``True`` if this
    call loaded ``path``, ``False`` if the creators were already registered (loaded earlier in this
    process). ``errors``: TensorRT's logged errors (:func:`make_logger`), to name the last one."""
    registry = trt.get_plugin_registry()
    if loading_plan(registered_creators(registry), path) == "loaded":
        return False
    if registry.load_library(str(path)) is None:
        from dpanet.runtime.tensorrt_engine import last_error

        raise DPANetError(f"{path}: TensorRT could not load the plugin library ({last_error(errors or [])})")
    missing = [name for name, there in registered_creators(registry).items() if not there]
    if missing:
        raise DPANetError(
            f"{path}: loaded, but it registers no {', '.join(missing)} creator in namespace "
            f"{PLUGIN_NAMESPACE!r} (version {PLUGIN_VERSION}): not a dpanet plugin library of this version"
        )
    return True
