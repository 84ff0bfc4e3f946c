"""The runtime is edge-clean: every dpanet.runtime module imports with torch unavailable."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import importlib, pkgutil, sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
import dpanet.runtime as runtime
names = [m.name for m in pkgutil.iter_modules(runtime.__path__)]
for name in names:
    importlib.import_module(f"dpanet.runtime.{name}")
print(len(names))
"""


def test_every_runtime_module_imports_without_torch():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 10  # the modules were found, not an empty package
