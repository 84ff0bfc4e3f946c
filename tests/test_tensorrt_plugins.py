"""The plugin library loaded once per process (dpanet.runtime.tensorrt_plugins), without TensorRT.

TensorRT's ``IPluginRegistry::loadLibrary`` "will fail and return nullptr if any of the plugins are
already registered" (NvInferRuntimeCommon.h, 10.3 and 11.1). The registry below keeps exactly that
contract and nothing more, so the loader's decisions can be checked here; the loader against the
real registry runs in tests/test_plugins_tensorrt.py and `dpanet doctor` (GPU machines). The names
it calls are checked against both majors' Python bindings by tests/test_tensorrt_names.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from dpanet.contract import PLUGINS
from dpanet.errors import DPANetError
from dpanet.runtime.tensorrt_plugins import load_plugin_library, loading_plan, registered_creators


class ContractRegistry:
    """``get_creator``/``load_library`` as the header documents them; ``library`` registers the
    creators it is given."""

    def __init__(self, library: tuple[str, ...] = PLUGINS, preregistered: tuple[str, ...] = ()):
        self.library, self.creators, self.lookups, self.loads = library, set(preregistered), [], 0

    def get_creator(self, name, version, namespace):
        self.lookups.append((name, version, namespace))
        return object() if (name, version, namespace) in {(c, "1", "dpanet") for c in self.creators} else None

    def load_library(self, path):
        self.loads += 1
        if self.creators & set(self.library):
            return None
        self.creators |= set(self.library)
        return object()


def _trt(registry):
    return SimpleNamespace(get_plugin_registry=lambda: registry)


def test_the_plan_loads_only_when_no_creator_is_registered():
    assert loading_plan(dict.fromkeys(PLUGINS, False), "lib.so") == "load"
    assert loading_plan(dict.fromkeys(PLUGINS, True), "lib.so") == "loaded"
    with pytest.raises(DPANetError, match="DPANetCorrelation is already registered .* DPANetModulated"):
        loading_plan({PLUGINS[0]: True, PLUGINS[1]: False}, "lib.so")


def test_creators_are_looked_up_as_the_onnx_parser_does():
    registry = ContractRegistry(preregistered=(PLUGINS[0],))
    assert registered_creators(registry) == {PLUGINS[0]: True, PLUGINS[1]: False}
    assert registry.lookups == [(name, "1", "dpanet") for name in PLUGINS]


def test_loading_twice_in_one_process_loads_once():
    registry = ContractRegistry()
    trt = _trt(registry)
    assert load_plugin_library(trt, "lib.so") is True
    assert load_plugin_library(trt, "lib.so") is False
    assert registry.loads == 1
    # what build() and the backend did before: load_library on every call
    assert registry.load_library("lib.so") is None


def test_a_failed_load_names_tensorrts_last_error():
    registry = ContractRegistry(library=PLUGINS, preregistered=())
    registry.load_library = lambda path: None
    with pytest.raises(DPANetError, match=r"lib.so: TensorRT could not load the plugin library \(bad ELF\)"):
        load_plugin_library(_trt(registry), "lib.so", ["bad ELF"])


def test_a_library_without_our_creators_is_refused():
    registry = ContractRegistry(library=("SomethingElse",))
    with pytest.raises(
        DPANetError, match="registers no DPANetCorrelation, DPANetModulatedDeformConv2d creator"
    ):
        load_plugin_library(_trt(registry), "other.so")
