"""Transcription sessions from the start: what an ``intent=transcription`` connection opens.

GA opens with ``session.created`` carrying a transcription session (``type:
"transcription"``, the shape of the official ``RealtimeTranscriptionSessionCreateRequest``);
beta opens with ``transcription_session.created`` carrying the beta transcription session,
as OpenAI's beta interface did (no type of the official package names that event). Either
way the session transcribes once ``transcription`` names a model, and turn detection (server
VAD with 500 ms of silence, transcription sessions' default) commits turns without answers.
"""

from __future__ import annotations

import copy

from .._endpoints import Dialect
from ._catalogue import JsonObject, ga_transcription_session

__all__ = ["TRANSCRIPTION_TURN_DETECTION", "opening_event", "transcription_start"]

TRANSCRIPTION_TURN_DETECTION: JsonObject = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
}


def transcription_start(session: JsonObject, dialect: Dialect) -> tuple[JsonObject, bool]:
    """The session an ``intent=transcription`` connection starts with, and whether the beta
    transcription session (the simulator's own) is the one in force."""
    if dialect == "beta":
        return session, True
    started = ga_transcription_session(session)
    started["audio"]["input"]["turn_detection"] = copy.deepcopy(TRANSCRIPTION_TURN_DETECTION)
    return started, False


def opening_event(session: JsonObject, beta_transcription: JsonObject | None) -> JsonObject:
    """The first event: ``session.created``, or beta's ``transcription_session.created``."""
    if beta_transcription is not None:
        return {"type": "transcription_session.created", "session": beta_transcription}
    return {"type": "session.created", "session": session}
