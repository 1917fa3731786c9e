"""How simulated sessions answer: the options every session of a server shares."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from ._catalogue import GREETING

if TYPE_CHECKING:
    from ._script import Script

__all__ = ["SimulatorOptions"]


def _positive_chunks(_instance: object, _attribute: object, value: int) -> None:
    if value < 1:
        raise ValueError("delta_chunks must be at least 1")


def _interval(_instance: object, _attribute: object, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError("delta_interval must be a finite number of seconds, 0 or more")


def _pacing(_instance: object, _attribute: object, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise ValueError("audio_pacing must be None or a finite speed factor, 0 or more")


def _lifetime(_instance: object, _attribute: object, value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError("session_lifetime must be positive")


@attrs.frozen
class SimulatorOptions:
    """How simulated sessions answer; shared by every session of a server."""

    reply: str | Callable[[str], str] | None = None
    """The answer text of every response: a fixed string, or a callable that receives the
    last user text of the conversation (``""`` when there is none; for a user audio item,
    what the server heard) and runs on the thread that calls
    :meth:`~._simulator.SessionSimulator.receive` (for the answer to a turn that waited for
    the response it interrupted to end: on the response thread). By default
    ``"You said: <text>"``, or a greeting, or, after function call outputs,
    ``"Result of <name>: <output>"``."""
    delta_chunks: int = attrs.field(default=4, validator=_positive_chunks)
    """How many text (or function call argument) deltas a response streams (fewer for a
    shorter text; at least one). Audio is streamed in 100 ms chunks instead."""
    delta_interval: float = attrs.field(default=0.0, validator=_interval)
    """Seconds the response thread waits before each delta (at least, with ``audio_pacing``)."""
    session_lifetime: float | None = attrs.field(default=None, validator=_lifetime)
    """Seconds a session lasts (its ``expires_at``); ``None``: the real 60 minutes. The
    transport calls :meth:`~._simulator.SessionSimulator.expire` when the time is up."""
    audio_pacing: float | None = attrs.field(default=None, validator=_pacing)
    """Speed of audio deltas relative to real time: ``None`` or 0, as fast as possible;
    1.0, each audio delta goes out when the audio before it has had time to play; 2.0,
    twice as fast. The wait before an audio delta is the longer of this and
    ``delta_interval``."""
    transcribe: Callable[[bytes], str] | None = None
    """What the server hears in committed input audio: called with the buffer's bytes, in
    the session's input audio format, on the thread that handles the commit. By default
    the text of the server's own synthesised speech, recovered, or ``"(<n> ms of audio)"``."""
    late_transcripts: bool = False
    """Hold each input audio transcription until a response is in progress: it is sent
    right after the next ``response.created`` (at once if a response is in progress at the
    commit), as real servers often deliver them. By default a transcription follows its
    item's events at once. Transcription sessions never hold them."""
    script: Script | None = None
    """The answers a test declared (the server's ``script``); a scripted answer takes
    precedence over ``reply``, which takes precedence over the server's own answers."""

    @property
    def default_reply(self) -> bool:
        """No ``reply`` was given: answers are the server's own."""
        return self.reply is None

    def answer(self, user_text: str) -> str:
        """The text of a response to ``user_text``."""
        if callable(self.reply):
            return self.reply(user_text)
        if self.reply is not None:
            return self.reply
        return f"You said: {user_text}" if user_text else GREETING
