"""Every TensorRT Python name the project uses exists in the TensorRT versions its code claims.

TensorRT cannot be installed here, but the pybind11 sources of its Python module for 10.3 and 11.1
are in ../shared (third_party/tensorrt/<version>/python/src). This test reads, with ``ast``, the
project's TensorRT code and checks:

- every attribute chain on the module, ``trt.Class`` and ``trt.Class.MEMBER`` (classes, enums,
  enum values, module functions);
- every method or property used on a TensorRT object, where the object is a variable (or
  ``self._name`` attribute) named after its class in :data:`OBJECT_CLASSES`, the convention of
  the TensorRT modules;

against the names the pybind sources define (``py::class_``/``py::enum_``, ``.def*``, ``.value``,
``m.def``, base classes, enums nested with ``export_values``). Code in a function whose name ends
in ``_trt10`` or ``_trt11`` is checked against that version only, everything else against both.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import REPO, SHARED

PYBIND = SHARED / "third_party" / "tensorrt"
VERSIONS = {"10": "10.3", "11": "11.1"}
# the project's code that uses the tensorrt module (as `trt`)
MODULES = [
    REPO / "runtime" / "tensorrt_engine.py",
    REPO / "runtime" / "tensorrt_backend.py",
    REPO / "runtime" / "tensorrt_plugins.py",
    REPO / "runtime" / "engine_checks.py",
    REPO / "tests" / "test_plugins_tensorrt.py",
]
# variable names that hold TensorRT objects, and their Python class
OBJECT_CLASSES = {
    "builder": "Builder",
    "network": "INetworkDefinition",
    "config": "IBuilderConfig",
    "profile": "IOptimizationProfile",
    "parser": "OnnxParser",
    "engine": "ICudaEngine",
    "context": "IExecutionContext",
    "runtime": "Runtime",
    "registry": "IPluginRegistry",
    "timing_cache": "ITimingCache",
    "logger": "ILogger",
}
# set by tensorrt/__init__.py (Python), not by the bindings
PYTHON_LEVEL = {"__version__"}


@dataclass
class Api:
    """The names one version's bindings define."""

    module: set[str] = field(default_factory=set)
    members: dict[str, set[str]] = field(default_factory=dict)
    bases: dict[str, str] = field(default_factory=dict)

    def members_of(self, cls: str) -> set[str]:
        names = set(self.members.get(cls, set()))
        while cls in self.bases:
            cls = self.bases[cls]
            names |= self.members.get(cls, set())
        return names


def _template_args(text: str, start: int) -> tuple[list[str], int]:
    """The top-level arguments of the template list opening at text[start] == '<', and its end."""
    depth, args, current = 0, [], ""
    for i in range(start, len(text)):
        c = text[i]
        if c == "<":
            depth += 1
            if depth == 1:
                continue
        elif c == ">":
            depth -= 1
            if depth == 0:
                args.append(current.strip())
                return args, i + 1
        elif c == "," and depth == 1:
            args.append(current.strip())
            current = ""
            continue
        current += c
    raise ValueError("unbalanced template")


DECLARATION = re.compile(r"py::(class_|enum_)<")
AFTER_TEMPLATE = re.compile(r'\s*(\w+)?\s*[({]\s*(\w+)\s*,\s*"(\w+)"')
MEMBER = re.compile(r'(?:(\w+)\s*)?\.(def\w*|value)\(\s*"(\w+)"')
EXPORT_VALUES = ".export_values()"


def parse_bindings(src: Path) -> Api:
    """Class and member names from pybind11 sources (attributed to the nearest declaration)."""
    api = Api()
    for path in sorted(src.rglob("*.cpp")):
        text = path.read_text(encoding="utf-8", errors="replace")
        events = []  # (position, kind, data)
        for m in DECLARATION.finditer(text):
            args, end = _template_args(text, m.end() - 1)
            after = AFTER_TEMPLATE.match(text, end)
            if after is None:
                continue
            variable, scope, name = after.groups()
            base = args[1] if len(args) > 1 and not args[1].startswith(("std::", "py::")) else None
            events.append((m.start(), "declare", (args[0], variable, scope, name, base, m.group(1))))
        for m in MEMBER.finditer(text):
            events.append((m.start(), "member", m.groups()))
        events.sort(key=lambda e: e[0])
        cpp_to_py: dict[str, str] = {}
        variables: dict[str, str] = {}
        current = None
        pending_enums = []  # (enum name, parent, start)
        for position, kind, data in events:
            if kind == "declare":
                cpp, variable, scope, name, base, what = data
                cpp_to_py[cpp] = name
                api.members.setdefault(name, set())
                if variable:
                    variables[variable] = name
                parent = variables.get(scope)
                if scope == "m":
                    api.module.add(name)
                elif parent is not None:
                    api.members.setdefault(parent, set()).add(name)
                    if what == "enum_":
                        pending_enums.append((name, parent, position))
                if base is not None:
                    api.bases[name] = cpp_to_py.get(base, base.split("::")[-1])
                current = name
                continue
            receiver, _, name = data
            if receiver == "m":
                api.module.add(name)
            elif receiver in variables:
                current = variables[receiver]
                api.members[current].add(name)
            elif current is not None:
                api.members[current].add(name)
        for name, parent, start in pending_enums:
            end = text.find(";", text.find(f'"{name}"', start))
            if EXPORT_VALUES in text[start : end + 1]:
                api.members[parent] |= api.members[name]
    return api


@dataclass(frozen=True)
class Use:
    path: str
    line: int
    cls: str | None  # None: a module-level name
    name: str
    versions: tuple[str, ...]

    def __str__(self) -> str:
        owner = f"trt.{self.cls}." if self.cls else "trt."
        return f"{self.path}:{self.line}: {owner}{self.name}"


def _versions_of(function: str | None) -> tuple[str, ...]:
    for major in VERSIONS:
        if function is not None and function.endswith(f"_trt{major}"):
            return (major,)
    return tuple(VERSIONS)


def _receiver(node: ast.expr) -> str | None:
    """``builder`` for ``builder`` and ``self._builder`` / ``self.builder``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr.lstrip("_")
    return None


def tensorrt_uses(source: str, path: str = "<source>") -> list[Use]:
    """The TensorRT names ``source`` uses, each with the versions it must exist in."""
    uses: list[Use] = []

    def visit(node: ast.AST, function: str | None) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        if isinstance(node, ast.Attribute):
            versions = _versions_of(function)
            value = node.value
            if isinstance(value, ast.Name) and value.id == "trt":
                uses.append(Use(path, node.lineno, None, node.attr, versions))
            elif (
                isinstance(value, ast.Attribute)
                and isinstance(value.value, ast.Name)
                and value.value.id == "trt"
                and value.attr not in PYTHON_LEVEL
            ):
                uses.append(Use(path, node.lineno, value.attr, node.attr, versions))
            elif _receiver(value) in OBJECT_CLASSES:
                uses.append(Use(path, node.lineno, OBJECT_CLASSES[_receiver(value)], node.attr, versions))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(source), None)
    return uses


def missing_names(uses: list[Use], apis: dict[str, Api]) -> list[str]:
    problems = []
    for use in uses:
        for major in use.versions:
            api = apis[major]
            known = (
                api.module | PYTHON_LEVEL
                if use.cls is None
                else api.members_of(use.cls) | ({"__init__"} if use.cls in api.members else set())
            )
            if use.cls is not None and use.cls not in api.members:
                problems.append(f"{use}: no class {use.cls} in TensorRT {VERSIONS[major]}")
            elif use.name not in known:
                problems.append(f"{use}: not in TensorRT {VERSIONS[major]}")
    return problems


@pytest.fixture(scope="module")
def apis() -> dict[str, Api]:
    sources = {major: PYBIND / version / "python" / "src" for major, version in VERSIONS.items()}
    for source in sources.values():
        if not source.is_dir():
            pytest.skip(f"needs the TensorRT Python binding sources at {source} (set DPANET_SHARED)")
    return {major: parse_bindings(source) for major, source in sources.items()}


def test_the_bindings_parse_into_the_api_known_from_the_migration_guide(apis):
    """Independent facts (NVIDIA's 10.x-to-11.x migration guide) the parsed tables must show."""
    for major in VERSIONS:
        assert {"Builder", "Runtime", "OnnxParser", "init_libnvinfer_plugins", "get_plugin_registry"} <= apis[
            major
        ].module
        assert {"create_network", "build_serialized_network"} <= apis[major].members_of("Builder")
        assert {"WARNING", "ERROR", "log"} <= apis[major].members_of("Logger")  # nested enum, base class
        assert "execute_async_v3" in apis[major].members_of("IExecutionContext")
    assert {"FP16", "INT8"} <= apis["10"].members["BuilderFlag"]
    assert not {"FP16", "INT8"} & apis["11"].members["BuilderFlag"]
    assert "EXPLICIT_BATCH" in apis["10"].members["NetworkDefinitionCreationFlag"]
    assert "EXPLICIT_BATCH" not in apis["11"].members["NetworkDefinitionCreationFlag"]


def test_every_tensorrt_name_the_project_uses_exists_in_each_version_it_claims(apis):
    uses = [use for path in MODULES for use in tensorrt_uses(path.read_text(), str(path.relative_to(REPO)))]
    assert len(uses) >= 40, "the checker found too few TensorRT names: did the modules or conventions change?"
    assert any(use.versions == ("10",) for use in uses), "no TensorRT 10-only code found (_trt10 functions)"
    assert missing_names(uses, apis) == []


@pytest.mark.parametrize(
    "source, problem",
    [
        ("def f(trt):\n    return trt.Bulider(None)\n", "trt.Bulider: not in TensorRT 10.3"),
        ("def f(trt, builder):\n    builder.create_netwrok(0)\n", "trt.Builder.create_netwrok: not in"),
        (
            "def f(trt, self):\n    self._context.execute_async_v2([], 0)\n",
            "execute_async_v2: not in TensorRT 10.3",
        ),
        (
            "def f(trt, config):\n    config.set_flag(trt.BuilderFlag.FP16)\n",
            "BuilderFlag.FP16: not in TensorRT 11.1",
        ),
        (
            "def f(trt):\n    return trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH\n",
            "not in TensorRT 11.1",
        ),
        ("def f_trt11(trt):\n    return trt.BuilderFlag.INT8\n", "BuilderFlag.INT8: not in TensorRT 11.1"),
    ],
)
def test_a_misspelled_or_removed_name_is_reported(apis, source, problem):
    problems = missing_names(tensorrt_uses(source), apis)
    assert any(problem in p for p in problems), problems


def test_version_specific_code_is_checked_against_its_version_only(apis):
    source = "def precision_trt10(trt, config):\n    config.set_flag(trt.BuilderFlag.FP16)\n"
    assert missing_names(tensorrt_uses(source), apis) == []
