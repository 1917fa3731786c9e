"""The two dialects of the Realtime protocol: their event names and how they correspond.

GA is what api.openai.com speaks since the ``gpt-realtime`` release; beta is the pre-GA
shape (``OpenAI-Beta: realtime=v1``) that Azure's ``api-version`` deployments and
compatible servers still speak. Pure data and functions, no I/O.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from ._errors import InvalidEventError

__all__ = [
    "BETA_CLIENT_EVENTS",
    "BETA_SERVER_EVENTS",
    "BETA_SESSION_FIELDS",
    "BETA_TO_GA",
    "CLIENT_SIDE_EVENTS",
    "CLIENT_SIDE_PREFIX",
    "GA_CLIENT_EVENTS",
    "GA_SERVER_EVENTS",
    "GA_SESSION_FIELDS",
    "TURN_DETECTION_FIELDS",
    "EventNames",
    "session_for_dialect",
]

_SHARED_SERVER_EVENTS = frozenset(
    {
        "conversation.created",
        "conversation.item.created",
        "conversation.item.deleted",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.failed",
        "conversation.item.retrieved",
        "conversation.item.truncated",
        "error",
        "input_audio_buffer.cleared",
        "input_audio_buffer.committed",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "output_audio_buffer.cleared",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "rate_limits.updated",
        "response.content_part.added",
        "response.content_part.done",
        "response.created",
        "response.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.added",
        "response.output_item.done",
        "session.created",
        "session.updated",
    }
)
"""Server event types both dialects send under the same name."""

_GA_ONLY_SERVER_EVENTS = frozenset(
    {
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.segment",
        "input_audio_buffer.dtmf_event_received",
        "input_audio_buffer.timeout_triggered",
        "mcp_list_tools.completed",
        "mcp_list_tools.failed",
        "mcp_list_tools.in_progress",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.done",
        "response.output_text.delta",
        "response.output_text.done",
    }
)
"""Server event types only GA has (renamed beta events, MCP, DTMF, timeouts...)."""

_BETA_ONLY_SERVER_EVENTS = frozenset(
    {
        "response.audio.delta",
        "response.audio.done",
        "response.audio_transcript.delta",
        "response.audio_transcript.done",
        "response.text.delta",
        "response.text.done",
        "transcription_session.updated",
    }
)
"""Server event types only beta has (the pre-GA names)."""

GA_SERVER_EVENTS = _SHARED_SERVER_EVENTS | _GA_ONLY_SERVER_EVENTS
"""Every server event type of the GA dialect (``gpt-realtime``)."""

BETA_SERVER_EVENTS = _SHARED_SERVER_EVENTS | _BETA_ONLY_SERVER_EVENTS
"""Every server event type of the beta dialect (``OpenAI-Beta: realtime=v1``)."""

CLIENT_SIDE_PREFIX = "client."
"""The prefix of the events the client makes itself; no server event may carry it."""
CLIENT_SIDE_EVENTS = frozenset(
    {
        "client.handler_error",
        "client.invalid_frame",
        "client.closed",
        "client.conversation.updated",
        "client.conversation.item_completed",
        "client.reconnecting",
        "client.reconnected",
        "client.session_expiring",
        "client.session_rolled_over",
        "client.backlog",
    }
)
"""Events the client itself dispatches, about the connection rather than from the server."""

GA_CLIENT_EVENTS = frozenset(
    {
        "conversation.item.create",
        "conversation.item.delete",
        "conversation.item.retrieve",
        "conversation.item.truncate",
        "input_audio_buffer.append",
        "input_audio_buffer.clear",
        "input_audio_buffer.commit",
        "output_audio_buffer.clear",
        "response.cancel",
        "response.create",
        "session.update",
    }
)
"""Every client event type of the GA dialect."""

BETA_CLIENT_EVENTS = GA_CLIENT_EVENTS | {"transcription_session.update"}
"""Every client event type of the beta dialect."""

BETA_TO_GA = {
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "conversation.item.created": "conversation.item.added",
}
"""Beta server event names and the GA names of the same events."""

_BETA_PREFIXES_TO_GA = {
    "response.text.": "response.output_text.",
    "response.audio.": "response.output_audio.",
    "response.audio_transcript.": "response.output_audio_transcript.",
}


class EventNames:
    """How one connection's dialect names events, for matching handlers to events.

    Handlers may be registered under either dialect's name: both the registered pattern and
    each arriving event type are mapped to one canonical (GA) name before comparing, so
    ``on("response.output_text.delta")`` hears beta's ``response.text.delta`` and the other
    way round. On a GA connection, names GA itself still uses (``conversation.item.created``)
    keep their own meaning.
    """

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self._events: dict[str, str] = {}

    def canonical_pattern(self, pattern: str) -> str:
        """The canonical form of an ``on()``/``wait_for()`` pattern."""
        if pattern.endswith(".*"):
            prefix = pattern[:-1]
            return _BETA_PREFIXES_TO_GA.get(prefix, prefix) + "*"
        return self.canonical_event(pattern)

    def canonical_event(self, event_type: str) -> str:
        """The canonical name of an arriving event type (cached: this is the hot path)."""
        name = self._events.get(event_type)
        if name is None:
            name = BETA_TO_GA.get(event_type, event_type)
            if self.dialect == "ga" and event_type in GA_SERVER_EVENTS:
                name = event_type
            self._events[event_type] = name
        return name

    def matches(self, pattern: str, event_type: str) -> bool:
        """Whether a canonical ``pattern`` selects events of (wire) ``event_type``."""
        if pattern == "*":
            return True
        canonical = self.canonical_event(event_type)
        if pattern.endswith(".*"):
            prefix = pattern[:-1]
            return canonical.startswith(prefix) or event_type.startswith(prefix)
        return pattern in (canonical, event_type)


# --- session.update across dialects -----------------------------------------------------------

GA_SESSION_FIELDS = frozenset(
    {
        "type",
        "audio",
        "include",
        "instructions",
        "max_output_tokens",
        "model",
        "output_modalities",
        "parallel_tool_calls",
        "prompt",
        "reasoning",
        "tool_choice",
        "tools",
        "tracing",
        "truncation",
    }
)
"""Fields a GA ``session.update`` may set."""

BETA_SESSION_FIELDS = frozenset(
    {
        "client_secret",
        "input_audio_format",
        "input_audio_noise_reduction",
        "input_audio_transcription",
        "instructions",
        "max_response_output_tokens",
        "modalities",
        "model",
        "output_audio_format",
        "speed",
        "temperature",
        "tool_choice",
        "tools",
        "tracing",
        "turn_detection",
        "voice",
    }
)
"""Fields a beta ``session.update`` may set."""

_BETA_FORMAT_TO_GA: dict[str, dict[str, Any]] = {
    "pcm16": {"type": "audio/pcm", "rate": 24000},
    "g711_ulaw": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
}
# Beta flat field -> GA path inside the nested "audio" object.
_BETA_AUDIO_PATHS = {
    "voice": ("output", "voice"),
    "speed": ("output", "speed"),
    "input_audio_format": ("input", "format"),
    "output_audio_format": ("output", "format"),
    "input_audio_transcription": ("input", "transcription"),
    "input_audio_noise_reduction": ("input", "noise_reduction"),
    "turn_detection": ("input", "turn_detection"),
}
_BETA_ONLY_HINTS = {
    "temperature": "GA sessions have no sampling temperature; remove it",
    "client_secret": "client secrets are created over REST, not set with session.update",
}
_GA_ONLY_HINTS = {
    "include": "beta sessions cannot include extra outputs",
    "prompt": "beta sessions have no prompt templates; send the text as instructions",
    "truncation": "beta sessions have no truncation setting",
    "parallel_tool_calls": "beta sessions have no parallel_tool_calls setting",
    "reasoning": "beta sessions have no reasoning setting",
}


def session_for_dialect(session: Mapping[str, Any], dialect: str) -> dict[str, Any]:
    """Rewrite a ``session.update`` session for ``dialect``, translating the other one's fields.

    A session written for GA (``output_modalities``, nested ``audio``) or for beta
    (``modalities``, ``voice``, ``input_audio_format``...) works on either connection.
    Raises :class:`InvalidEventError` naming the field when there is no equivalent, or the
    field belongs to neither dialect.
    """
    return _session_to_ga(session) if dialect == "ga" else _session_to_beta(session)


def _unknown_field(name: str) -> InvalidEventError:
    close = difflib.get_close_matches(name, GA_SESSION_FIELDS | BETA_SESSION_FIELDS, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return InvalidEventError(f"session field {name!r} exists in neither dialect{hint}")


def _session_to_ga(session: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    audio: dict[str, dict[str, Any]] = {}
    for name, value in session.items():
        if name in GA_SESSION_FIELDS:
            if name == "audio":
                for side, settings in (value or {}).items():
                    audio.setdefault(side, {}).update(settings or {})
            else:
                result[name] = value
        elif name in _BETA_ONLY_HINTS:
            raise InvalidEventError(
                f"session field {name!r} is beta-only: {_BETA_ONLY_HINTS[name]}"
            )
        elif name == "modalities":
            result["output_modalities"] = ["audio"] if "audio" in (value or ()) else ["text"]
        elif name == "max_response_output_tokens":
            result["max_output_tokens"] = value
        elif name in _BETA_AUDIO_PATHS:
            side, key = _BETA_AUDIO_PATHS[name]
            setting = value
            if name.endswith("_format") and value is not None:
                if value not in _BETA_FORMAT_TO_GA:
                    raise InvalidEventError(
                        f"session field {name!r}: unknown audio format {value!r}"
                    )
                setting = dict(_BETA_FORMAT_TO_GA[value])
            audio.setdefault(side, {})[key] = setting
        else:
            raise _unknown_field(name)
    turn_detection = audio.get("input", {}).get("turn_detection")
    if isinstance(turn_detection, Mapping) and "type" not in turn_detection:
        # Beta's turn detection defaults to server VAD; GA requires the type spelled out.
        audio["input"]["turn_detection"] = {"type": "server_vad", **turn_detection}
    if audio:
        result["audio"] = audio
    # The GA server requires the session type; "realtime" is the conversational one.
    result.setdefault("type", "realtime")
    return result


def _session_to_beta(session: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    origin: dict[str, str] = {}  # beta field -> where the caller wrote it, for messages
    for name, value in session.items():
        if name in BETA_SESSION_FIELDS:
            result[name] = value
        elif name in _GA_ONLY_HINTS:
            raise InvalidEventError(f"session field {name!r} is GA-only: {_GA_ONLY_HINTS[name]}")
        elif name == "type":
            if value not in (None, "realtime"):
                raise InvalidEventError(
                    f"session type {value!r} has no beta session.update; beta transcription "
                    "sessions use transcription_session.update"
                )
        elif name == "output_modalities":
            result["modalities"] = ["text", "audio"] if "audio" in (value or ()) else ["text"]
        elif name == "max_output_tokens":
            result["max_response_output_tokens"] = value
        elif name == "audio":
            for beta_name, (side, key) in _BETA_AUDIO_PATHS.items():
                settings = (value or {}).get(side) or {}
                if key in settings:
                    setting = settings[key]
                    if beta_name.endswith("_format") and setting is not None:
                        setting = _beta_format(f"audio.{side}.{key}", setting)
                    result[beta_name] = setting
                    origin[beta_name] = f"audio.{side}.{key}"
            for side, settings in (value or {}).items():
                known = {key for s, key in _BETA_AUDIO_PATHS.values() if s == side}
                for key in settings or {}:
                    if key not in known:
                        raise InvalidEventError(
                            f"session field 'audio.{side}.{key}' has no beta equivalent"
                        )
        else:
            raise _unknown_field(name)
    _check_beta_values(result, origin)
    return result


TURN_DETECTION_FIELDS = frozenset(
    {
        "type",
        "threshold",
        "prefix_padding_ms",
        "silence_duration_ms",
        "create_response",
        "interrupt_response",
        "eagerness",
    }
)
"""The fields of a turn detection setting both dialects take (GA adds ``idle_timeout_ms``)."""

# Keys beta accepts inside its nested session settings.
_BETA_NESTED_KEYS = {
    "turn_detection": TURN_DETECTION_FIELDS,
    "input_audio_transcription": frozenset({"model", "language", "prompt"}),
    "input_audio_noise_reduction": frozenset({"type"}),
}
_BETA_TOOL_KEYS = frozenset({"type", "name", "description", "parameters"})


def _check_beta_values(session: Mapping[str, Any], origin: Mapping[str, str]) -> None:
    """Refuse values GA can express and beta cannot, naming the field as the caller wrote it."""
    for name, keys in _BETA_NESTED_KEYS.items():
        value = session.get(name)
        if isinstance(value, Mapping):
            for key in value:
                if key not in keys:
                    path = f"{origin.get(name, name)}.{key}"
                    raise InvalidEventError(f"session field {path!r} has no beta equivalent")
    voice = session.get("voice")
    if voice is not None and not isinstance(voice, str):
        path = origin.get("voice", "voice")
        raise InvalidEventError(f"session field {path!r}: custom voices are GA-only")
    tool_choice = session.get("tool_choice")
    if tool_choice is not None and not isinstance(tool_choice, str):
        raise InvalidEventError(
            "session field 'tool_choice': forcing a specific tool is GA-only; beta takes "
            "'auto', 'none' or 'required'"
        )
    for index, tool in enumerate(session.get("tools") or ()):
        if not isinstance(tool, Mapping) or tool.get("type", "function") != "function":
            kind = tool.get("type") if isinstance(tool, Mapping) else type(tool).__name__
            raise InvalidEventError(
                f"session field 'tools[{index}]': beta has function tools only, not {kind!r}"
            )
        extra = sorted(set(tool) - _BETA_TOOL_KEYS)
        if extra:
            raise InvalidEventError(
                f"session field 'tools[{index}].{extra[0]}' has no beta equivalent"
            )


def _beta_format(path: str, audio_format: Any) -> str:
    for beta_name, ga_format in _BETA_FORMAT_TO_GA.items():
        if isinstance(audio_format, Mapping) and audio_format.get("type") == ga_format["type"]:
            if audio_format.get("rate", ga_format.get("rate")) != ga_format.get("rate"):
                raise InvalidEventError(
                    f"session field {path!r} ({audio_format!r}): beta supports "
                    f"{ga_format['type']} only at {ga_format.get('rate')} Hz"
                )
            return beta_name
    raise InvalidEventError(f"session field {path!r}: no beta equivalent of {audio_format!r}")
