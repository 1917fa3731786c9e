"""Recording a session: every event sent and received, one JSON object per line.

Each line is ``{"time": <epoch seconds>, "direction": "sent" | "received", "event": {...}}``.
Audio payloads (``input_audio_buffer.append``'s ``audio``, audio deltas, audio content
parts, a translation session's appends and audio deltas) are replaced by
``"<N bytes of audio>"`` unless audio is asked for; registered secrets (the API key) are
masked in every line, so a recording can be shared.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import IO, Any

from ._secrets import redact

__all__ = ["Recording"]

logger = logging.getLogger("realtime_sync")

_AUDIO_FIELDS = {
    "input_audio_buffer.append": "audio",
    "response.output_audio.delta": "delta",
    "response.audio.delta": "delta",
    # a translation session's
    "session.input_audio_buffer.append": "audio",
    "session.output_audio.delta": "delta",
}


class Recording:
    """A JSONL recording in progress; :meth:`close` (or leaving a ``with``) ends it."""

    def __init__(self, target: str | os.PathLike[str] | IO[str], *, audio: bool = False) -> None:
        self._owned = isinstance(target, (str, os.PathLike))
        self._file: IO[str] = (
            open(target, "w", encoding="utf-8")  # noqa: SIM115  (closed by close())
            if isinstance(target, (str, os.PathLike))
            else target
        )
        self._audio = audio
        self._lock = threading.Lock()
        self.closed = False
        """Whether the recording has ended."""

    def sent(self, event: Mapping[str, Any]) -> None:
        """Record a client event as sent (a copy: the caller's dict is left alone)."""
        self._write("sent", copy.deepcopy(dict(event)) if not self._audio else dict(event))

    def received(self, event: Any) -> Any:
        """Record a server event (a reducer: returns it unchanged)."""
        to_dict = getattr(event, "to_dict", None)
        if to_dict is not None and not event.type.startswith("client."):
            self._write("received", to_dict())
        return event

    def close(self) -> None:
        """End the recording; a file it opened is closed."""
        with self._lock:
            if not self.closed:
                self._stop()

    def _stop(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError, ValueError):  # a full disk, a file closed by others
            self._file.flush()
            if self._owned:
                self._file.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write(self, direction: str, event: dict[str, Any]) -> None:
        if not self._audio:
            _elide_audio(event)
        line = json.dumps(
            {"time": round(time.time(), 6), "direction": direction, "event": event},
            ensure_ascii=False,
            default=str,
        )
        with self._lock:
            if self.closed:
                return
            try:
                self._file.write(redact(line) + "\n")
            except (OSError, ValueError) as exc:  # full disk, closed file: stop, never break
                logger.error("recording stopped: %s", exc)
                self._stop()


def _elide_audio(event: dict[str, Any]) -> None:
    field = _AUDIO_FIELDS.get(str(event.get("type")))
    if field is not None and isinstance(event.get(field), str):
        event[field] = _elided(event[field])
    item, part = event.get("item"), event.get("part")
    parts = item.get("content") if isinstance(item, dict) else [part]
    for each in parts if isinstance(parts, list) else ():
        if isinstance(each, dict) and isinstance(each.get("audio"), str):
            each["audio"] = _elided(each["audio"])


def _elided(text: str) -> str:
    size = len(text) * 3 // 4 - (2 if text.endswith("==") else 1 if text.endswith("=") else 0)
    return f"<{size} bytes of audio>"
