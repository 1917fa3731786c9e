"""Session objects: what ``session.created``/``session.updated`` carry, and their parts.

:class:`Session` and the beta :class:`TranscriptionSession` with everything nested in them:
the audio configuration (formats, turn detection, transcription, noise reduction, input and
output audio, voices), the tools and MCP tool filters the model may use, and the other
settings (tool choice, tracing, truncation, prompt, reasoning, the ephemeral client
secret). These are leaves of the protocol layer: they import nothing but :mod:`._models`.
They follow the conventions described in :mod:`._objects`, which re-exports every name
defined here: the rest of the package imports them from there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from attrs import frozen

from ._models import Model

__all__ = [
    "AudioFormat",
    "AudioInput",
    "AudioOutput",
    "ClientSecret",
    "CustomVoice",
    "McpApprovalFilter",
    "McpToolFilter",
    "NoiseReduction",
    "Prompt",
    "Reasoning",
    "Session",
    "SessionAudio",
    "TokenLimits",
    "Tool",
    "ToolChoice",
    "TracingConfig",
    "TranscriptionConfig",
    "TranscriptionSession",
    "Truncation",
    "TurnDetection",
]


# --- audio configuration --------------------------------------------------------------------


@frozen(kw_only=True)
class AudioFormat(Model):
    """GA audio encoding, e.g. ``{"type": "audio/pcm", "rate": 24000}``."""

    type: str | None
    """``audio/pcm``, ``audio/pcmu`` or ``audio/pcma``."""
    rate: int | None
    """Sample rate in Hz (only for ``audio/pcm``: 24000)."""


@frozen(kw_only=True)
class TurnDetection(Model):
    """Voice activity detection: how the server decides that the user stopped speaking.

    GA ``audio.input.turn_detection``, beta ``turn_detection``; None in the session means
    turn detection is off.
    """

    type: str | None
    """``server_vad`` or ``semantic_vad``."""
    threshold: float | None
    """server_vad: activation threshold between 0 and 1."""
    prefix_padding_ms: int | None
    """server_vad: audio kept from before speech began, in milliseconds."""
    silence_duration_ms: int | None
    """server_vad: silence that ends a turn, in milliseconds."""
    idle_timeout_ms: int | None
    """server_vad: after this much silence the server triggers a timeout (GA)."""
    create_response: bool | None
    """Whether the end of a turn starts a response by itself."""
    interrupt_response: bool | None
    """Whether speech interrupts a response in progress."""
    eagerness: str | None
    """semantic_vad: ``low``, ``medium``, ``high`` or ``auto``."""


@frozen(kw_only=True)
class TranscriptionConfig(Model):
    """How input audio is transcribed.

    GA ``audio.input.transcription``; beta ``input_audio_transcription``.
    """

    model: str | None
    """Transcription model, e.g. ``whisper-1`` or ``gpt-4o-transcribe``."""
    language: str | None
    """Expected input language as an ISO-639-1 code."""
    languages: Sequence[str] | None
    """GA: several expected languages."""
    prompt: str | None
    """Text that guides the transcription."""
    keywords: Sequence[str] | None
    """GA: words the transcription should expect."""
    delay: str | None
    """GA: latency/accuracy trade-off for streaming models, e.g. ``low``."""


@frozen(kw_only=True)
class NoiseReduction(Model):
    """Filtering applied to input audio.

    GA ``audio.input.noise_reduction``; beta ``input_audio_noise_reduction``.
    """

    type: str | None
    """``near_field`` or ``far_field``."""
    strength: float | None
    """GA: how strongly noise is reduced."""


@frozen(kw_only=True)
class AudioInput(Model):
    """GA ``session.audio.input``: what the server expects from us."""

    format: AudioFormat | None
    """Encoding of the audio we append."""
    noise_reduction: NoiseReduction | None
    """Noise reduction, or None when off."""
    transcription: TranscriptionConfig | None
    """Transcription of our audio, or None when off."""
    turn_detection: TurnDetection | None
    """Turn detection, or None when off."""


@frozen(kw_only=True)
class CustomVoice(Model):
    """A voice referred to by id rather than by name."""

    id: str | None
    """The voice's id."""


@frozen(kw_only=True)
class AudioOutput(Model):
    """GA ``session.audio.output`` and ``response.audio.output``: the audio the model sends."""

    format: AudioFormat | None
    """Encoding of the audio deltas."""
    voice: str | CustomVoice | None
    """A voice name such as ``marin``, or a :class:`CustomVoice`."""
    speed: float | None
    """Speaking rate, 1.0 being normal."""


@frozen(kw_only=True)
class SessionAudio(Model):
    """GA ``session.audio``."""

    input: AudioInput | None
    """Input audio settings."""
    output: AudioOutput | None
    """Output audio settings (absent for transcription sessions)."""


# --- tools and other session settings -------------------------------------------------------


@frozen(kw_only=True)
class McpToolFilter(Model):
    """A selection of an MCP server's tools."""

    tool_names: Sequence[str] | None
    """Tools chosen by name."""
    read_only: bool | None
    """Whether only tools annotated as read-only match."""


@frozen(kw_only=True)
class McpApprovalFilter(Model):
    """Which MCP tools need our approval before each call."""

    always: McpToolFilter | None
    """Tools that always need approval."""
    never: McpToolFilter | None
    """Tools that never need approval."""


@frozen(kw_only=True)
class Tool(Model):
    """A tool the model may use: a function we implement, or a remote MCP server."""

    type: str | None
    """``function`` or ``mcp``."""
    name: str | None
    """function: the function's name."""
    description: str | None
    """function: when and how to call it."""
    parameters: Mapping[str, Any] | None
    """function: JSON Schema of the arguments."""
    server_label: str | None
    """mcp: the label that names the server in calls."""
    server_url: str | None
    """mcp: the server's URL."""
    server_description: str | None
    """mcp: what the server offers."""
    connector_id: str | None
    """mcp: a built-in connector used instead of a URL, e.g. ``connector_gmail``."""
    authorization: str | None
    """mcp: OAuth token for the server or connector."""
    headers: Mapping[str, str] | None
    """mcp: HTTP headers sent to the server."""
    allowed_tools: Sequence[str] | McpToolFilter | None
    """mcp: the tools the model may use, as names or a filter."""
    require_approval: str | McpApprovalFilter | None
    """mcp: ``always``, ``never`` or a per-tool filter."""
    allowed_callers: Sequence[str] | None
    """mcp: who may call the tools (``direct``, ``programmatic``)."""
    defer_loading: bool | None
    """mcp: whether the tool list is loaded only when needed."""
    tunnel_id: str | None
    """mcp: tunnel through which a private server is reached."""


@frozen(kw_only=True)
class ToolChoice(Model):
    """A specific tool the model must use (the object form of ``tool_choice``)."""

    type: str | None
    """``function`` or ``mcp``."""
    name: str | None
    """The function's name, or the MCP tool's name."""
    server_label: str | None
    """mcp: the server of the tool."""


@frozen(kw_only=True)
class TracingConfig(Model):
    """Tracing settings (the object form of ``tracing``; the string form is ``auto``)."""

    workflow_name: str | None
    """Name of the workflow in the traces dashboard."""
    group_id: str | None
    """Id grouping related traces."""
    metadata: Mapping[str, Any] | None
    """Arbitrary metadata attached to the trace."""


@frozen(kw_only=True)
class TokenLimits(Model):
    """Token limits used when truncating the conversation."""

    post_instructions: int | None
    """Maximum tokens kept after the instructions."""


@frozen(kw_only=True)
class Truncation(Model):
    """How the conversation is shortened when it outgrows the context (object form)."""

    type: str | None
    """``retention_ratio``."""
    retention_ratio: float | None
    """Fraction of the conversation kept, between 0 and 1."""
    token_limits: TokenLimits | None
    """Optional limits applied on truncation."""


@frozen(kw_only=True)
class Prompt(Model):
    """A stored prompt template and the values of its variables."""

    id: str | None
    """The prompt's id."""
    version: str | None
    """The prompt's version."""
    variables: Mapping[str, Any] | None
    """Values substituted into the template, by name."""


@frozen(kw_only=True)
class Reasoning(Model):
    """Reasoning settings of reasoning models."""

    effort: str | None
    """``minimal``, ``low``, ``medium``, ``high`` or ``xhigh``."""


@frozen(kw_only=True)
class ClientSecret(Model):
    """An ephemeral key, as sessions created over REST return it."""

    value: str | None
    """The key."""
    expires_at: int | None
    """Unix time at which it expires."""


# --- sessions -------------------------------------------------------------------------------


@frozen(kw_only=True)
class _SessionFields(Model):
    """Fields shared by :class:`Session` and :class:`TranscriptionSession`."""

    id: str | None
    """Session id, ``sess_...``."""
    object: str | None
    """``realtime.session`` or ``realtime.transcription_session``."""
    expires_at: int | None
    """Unix time at which the server ends the session."""
    include: Sequence[str] | None
    """Extra fields the server adds to events, e.g. ``item.input_audio_transcription.logprobs``."""
    client_secret: ClientSecret | None
    """Beta (and Azure): the session's ephemeral key, usually None."""
    modalities: Sequence[str] | None
    """Beta: e.g. ``["text", "audio"]``."""
    input_audio_format: str | None
    """Beta: ``pcm16``, ``g711_ulaw`` or ``g711_alaw``."""
    input_audio_transcription: TranscriptionConfig | None
    """Beta: transcription settings, or None when off."""
    input_audio_noise_reduction: NoiseReduction | None
    """Beta: noise reduction, or None when off."""
    turn_detection: TurnDetection | None
    """Beta: voice activity detection, or None when off."""


@frozen(kw_only=True)
class Session(_SessionFields):
    """A session's configuration, as ``session.created`` and ``session.updated`` carry it.

    Fields of both dialects are declared; the ones the connected dialect lacks are None.
    """

    type: str | None
    """GA: ``realtime`` or ``transcription``; beta: absent."""
    model: str | None
    """The model serving this session."""
    instructions: str | None
    """System instructions."""
    output_modalities: Sequence[str] | None
    """GA: ``["text"]`` or ``["audio"]``."""
    audio: SessionAudio | None
    """GA: input and output audio settings (format, voice, turn detection...)."""
    voice: str | None
    """Beta: the output voice."""
    speed: float | None
    """Beta: speaking rate, 1.0 being normal."""
    output_audio_format: str | None
    """Beta: ``pcm16``, ``g711_ulaw`` or ``g711_alaw``."""
    tools: tuple[Tool, ...] | None
    """Tools the model may call."""
    tool_choice: str | ToolChoice | None
    """``auto``, ``none``, ``required`` or a specific :class:`ToolChoice`."""
    parallel_tool_calls: bool | None
    """GA: whether the model may call several tools at once."""
    temperature: float | None
    """Beta: sampling temperature."""
    max_output_tokens: int | str | None
    """GA: a number or ``"inf"``."""
    max_response_output_tokens: int | str | None
    """Beta: a number or ``"inf"``."""
    tracing: str | TracingConfig | None
    """``auto``, a :class:`TracingConfig`, or None when tracing is off."""
    truncation: str | Truncation | None
    """GA: ``auto``, ``disabled`` or a :class:`Truncation`."""
    prompt: Prompt | None
    """GA: the stored prompt the session uses, if any."""
    reasoning: Reasoning | None
    """GA: reasoning settings, for reasoning models."""


@frozen(kw_only=True)
class TranscriptionSession(_SessionFields):
    """A beta transcription session, as ``transcription_session.updated`` carries it.

    GA transcription sessions come as a :class:`Session` with ``type: "transcription"``.
    """
