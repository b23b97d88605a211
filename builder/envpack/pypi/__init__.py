"""PyPI wheels in the bundle: the ``pip:`` list read as pip reads it, resolved for the target with
uv, locked as :class:`WheelRecord` s, fetched with envpack's fetcher, installed offline by the
environment's own pip (``stubs/pip-step.bat``).

The names below are imported on first use (PEP 562): a build without wheels reaches
:mod:`envpack.pypi.bundle`'s constants through this package, and must not pay for ``packaging``
and the resolver on the way (issue 18, a warm build's start-up).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from envpack.lock.wheel import WheelRecord, public_url, wheels_txt

    from .requirements import PipInput, parse_pip_list
    from .resolve import Resolution, resolve
    from .target import Target, python_version_of

# name -> the module that defines it
_LAZY = {
    "WheelRecord": "envpack.lock.wheel",
    "public_url": "envpack.lock.wheel",
    "wheels_txt": "envpack.lock.wheel",
    "PipInput": "envpack.pypi.requirements",
    "parse_pip_list": "envpack.pypi.requirements",
    "Resolution": "envpack.pypi.resolve",
    "resolve": "envpack.pypi.resolve",
    "Target": "envpack.pypi.target",
    "python_version_of": "envpack.pypi.target",
}

__all__ = [
    "PipInput",
    "Resolution",
    "Target",
    "WheelRecord",
    "parse_pip_list",
    "public_url",
    "python_version_of",
    "resolve",
    "wheels_txt",
]


if not TYPE_CHECKING:  # mypy reads the names from the block at the top, and nothing else

    class _Package(types.ModuleType):
        def __setattr__(self, name: str, value: Any) -> None:
            # The import system binds a submodule to its package's attribute once it is loaded
            # (by pypi/plan.py, say): ``envpack.pypi.resolve`` stays the function, as it was.
            if name == "resolve" and isinstance(value, types.ModuleType):
                value = value.resolve
            super().__setattr__(name, value)

    sys.modules[__name__].__class__ = _Package

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # once: the next lookup finds it without this hook
        return value
