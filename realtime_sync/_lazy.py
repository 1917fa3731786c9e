"""Names a package exports but imports on first use.

A package's ``__init__`` imports its modules only for type checkers and hands the table of
what it exports to :func:`lazy_exports`: importing the package, or a module inside it (the
pytest plugin, ``realtime_sync.webhooks``), then costs nothing until a name is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, Iterable[str]], submodules: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: each name in ``exports`` (module,
    relative to the package, to the names it gives) is imported when first asked for, then
    kept in the package; each of ``submodules`` is imported as the attribute of its name."""
    origin = {name: module for module, names in exports.items() for name in names}
    modules = frozenset(submodules)
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        if name in origin:
            value = getattr(importlib.import_module(origin[name], package), name)
        elif name in modules:
            value = importlib.import_module(f".{name}", package)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value  # found directly from now on
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *origin, *modules})

    return __getattr__, __dir__
