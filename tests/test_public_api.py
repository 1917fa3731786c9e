"""The public surface: __all__ is complete and exact, private modules stay private."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
import types

import pytest

import realtime_sync
import realtime_sync.testing


def public_names(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    } | ({"__version__"} if hasattr(module, "__version__") else set())


def test_all_lists_every_public_name_of_the_package() -> None:
    for name in realtime_sync.__all__:  # imported on first use
        getattr(realtime_sync, name)
    assert set(realtime_sync.__all__) == public_names(realtime_sync)
    assert len(realtime_sync.__all__) == len(set(realtime_sync.__all__))


def test_all_lists_every_public_name_of_testing() -> None:
    for name in realtime_sync.testing.__all__:  # imported on first use
        getattr(realtime_sync.testing, name)
    assert set(realtime_sync.testing.__all__) == public_names(realtime_sync.testing)


def test_exceptions_share_one_root() -> None:
    exceptions = [
        value
        for value in vars(realtime_sync).values()
        if isinstance(value, type) and issubclass(value, BaseException)
    ]
    assert len(exceptions) >= 14
    assert all(issubclass(exc, realtime_sync.RealtimeError) for exc in exceptions)


def test_version() -> None:
    assert realtime_sync.__version__.count(".") == 2


def test_all_lists_every_public_name_of_audio_and_tools() -> None:
    import realtime_sync.audio
    import realtime_sync.tools
    import realtime_sync.webhooks

    for module in (realtime_sync.audio, realtime_sync.tools, realtime_sync.webhooks):
        ours = {
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and (inspect.isfunction(value) or inspect.isclass(value))
            and value.__module__.startswith("realtime_sync")
        }
        assert ours <= set(module.__all__)
        assert all(hasattr(module, name) for name in module.__all__)


def test_all_lists_every_public_name_of_events() -> None:
    import realtime_sync.events

    assert set(realtime_sync.events.__all__) == public_names(realtime_sync.events)


def test_top_level_names_are_the_same_objects_as_in_events() -> None:
    import realtime_sync.events

    shared = set(realtime_sync.__all__) & set(realtime_sync.events.__all__)
    assert shared
    for name in shared:
        assert getattr(realtime_sync, name) is getattr(realtime_sync.events, name)


def _checked_imports(module: types.ModuleType) -> dict[str, str]:
    """The names an ``__init__`` imports for type checkers, with the module of each."""
    tree = ast.parse(inspect.getsource(module))
    (block,) = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "_typing.TYPE_CHECKING"
    ]
    return {
        alias.name: "." * node.level + (node.module or "")
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module  # not the submodules
        for alias in node.names
    }


def test_the_submodules_type_checkers_see_are_found_without_an_import() -> None:
    tree = ast.parse(inspect.getsource(realtime_sync))
    submodules = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 1 and not node.module
        for alias in node.names
    }
    assert submodules == {"audio", "events", "tools", "webhooks"}
    code = "import realtime_sync as r; print(*(type(getattr(r, n)).__name__ for n in {names}))"
    shown = subprocess.run(
        [sys.executable, "-c", code.format(names=sorted(submodules))],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.stdout.split() == ["module"] * 4, shown.stderr


@pytest.mark.parametrize("module", [realtime_sync, realtime_sync.testing])
def test_what_type_checkers_see_is_what_is_imported_on_first_use(
    module: types.ModuleType,
) -> None:
    checked = _checked_imports(module)
    assert set(checked) == set(module.__all__) - {"__version__"}
    for name, origin in checked.items():
        assert getattr(module, name) is getattr(
            importlib.import_module(origin, module.__name__), name
        )
    assert set(module.__all__) <= set(dir(module))


def test_lazy_names_behave_as_attributes_do() -> None:
    with pytest.raises(AttributeError, match="NoSuchName"):
        realtime_sync.NoSuchName  # type: ignore[attr-defined]  # noqa: B018
    assert not hasattr(realtime_sync, "_client_typo")
    namespace: dict[str, object] = {}
    exec("from realtime_sync import *", namespace)
    assert set(realtime_sync.__all__) <= set(namespace)
    code = "import realtime_sync; print(realtime_sync.webhooks.unwrap.__name__)"
    shown = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )
    assert shown.stdout.strip() == "unwrap", shown.stderr
