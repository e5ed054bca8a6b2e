"""Package names that load their module on first use (PEP 562), so importing a package stays cheap.

``lib.media`` and ``lib.rppg`` export functions whose modules load OpenCV and SciPy (about 100 MB and a
second of start-up). The web process names them everywhere (types, constants, the check it hands to a
worker) but runs them only in check workers and scripts; with lazy exports it never loads those
libraries unless it really calls one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, where ``exports`` maps each name to its submodule."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
