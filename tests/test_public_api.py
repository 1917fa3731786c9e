"""The public surface: __all__ is complete and exact, private modules stay private."""

from __future__ import annotations

import inspect
import types

import realtime_sync
import realtime_sync.testing


def public_names(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    } | ({"__version__"} if hasattr(module, "__version__") else set())


def test_all_lists_every_public_name_of_the_package() -> None:
    assert set(realtime_sync.__all__) == public_names(realtime_sync)
    assert len(realtime_sync.__all__) == len(set(realtime_sync.__all__))


def test_all_lists_every_public_name_of_testing() -> None:
    for name in realtime_sync.testing.__all__:  # LocalRealtimeServer is imported on first use
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
