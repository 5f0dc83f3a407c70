"""Import a module of ours from its bytecode, as Python imports any module.

Internal use only: this module is not part of the collection's public API.

Ansible's collection loader compiles a collection's Python from source in every task's worker.
kept._run_cache spares the rest of plugin_utils that, but it and kept._place load before it:
compiled from source they cost every task's worker about 2.5 ms, read from ``__pycache__``
about 0.3 ms (docs/benchmarks.md). Kept small, as this module itself is compiled every time.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types


def import_from_bytecode(fullname: str) -> types.ModuleType:
    """The module ``fullname`` (a plain module in one of our packages), imported with Python's
    own file loader, which reads ``__pycache__`` and writes it where it may."""
    loaded = sys.modules.get(fullname)
    if loaded is not None:
        return loaded
    parent, _dot, leaf = fullname.rpartition(".")
    package = importlib.import_module(parent)
    source = os.path.join(package.__path__[0], f"{leaf}.py")
    spec = importlib.util.spec_from_file_location(fullname, source)
    if spec is None or spec.loader is None or not os.path.isfile(source):
        return importlib.import_module(fullname)  # not a plain file: the usual import
    module = importlib.util.module_from_spec(spec)
    sys.modules[fullname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[fullname]
        raise
    setattr(package, leaf, module)
    return module
