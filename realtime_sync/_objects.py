"""Objects nested inside events: sessions, conversation items, responses, errors, limits.

One class serves both dialects wherever the wire shape allows: it declares the union of
the fields either dialect sends, and the ones a given server does not send are None.
Values the protocol defines as "a string or an object" (``tool_choice``, ``tracing``,
``voice``...) are annotated ``str | SomeModel``: an object decodes to the model, a string
stays a string. A decoded object cannot be changed: arrays of objects are tuples of models,
other arrays (``Sequence[str]``) and free-form objects (``Mapping[str, Any]``: JSON Schemas,
metadata) are read-only views that compare equal to the lists and dicts received.
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
    "ContentPart",
    "Conversation",
    "ConversationItem",
    "CustomVoice",
    "DetectedLanguage",
    "ErrorDetail",
    "InputTokenDetails",
    "Logprob",
    "McpApprovalFilter",
    "McpError",
    "McpTool",
    "McpToolFilter",
    "NoiseReduction",
    "Prompt",
    "RateLimit",
    "Reasoning",
    "Response",
    "ResponseAudio",
    "ResponseStatusDetails",
    "Session",
    "SessionAudio",
    "TokenDetails",
    "TokenLimits",
    "Tool",
    "ToolChoice",
    "TracingConfig",
    "TranscriptionConfig",
    "TranscriptionSession",
    "TranscriptionUsage",
    "Truncation",
    "TurnDetection",
    "Usage",
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


# --- conversation items ---------------------------------------------------------------------


@frozen(kw_only=True)
class ContentPart(Model):
    """One piece of an item's content: text, audio, an image or a reference.

    Its ``type`` is ``input_text``, ``input_audio`` or ``input_image`` in what we send,
    ``output_text`` or ``output_audio`` in what the model produces (GA), ``text`` or
    ``audio`` in beta items and some GA ones, or ``item_reference`` (beta).
    """

    type: str | None
    """The kind of part (see the class description)."""
    text: str | None
    """The text, for text parts."""
    audio: str | None
    """Base64 audio, for audio parts (often omitted by servers)."""
    transcript: str | None
    """Transcript of an audio part."""
    format: str | None
    """Encoding of an audio part, when the server names it (e.g. ``pcm16``)."""
    image_url: str | None
    """Image as a URL or base64 data URL, for ``input_image``."""
    detail: str | None
    """Image detail for ``input_image``: ``auto``, ``low`` or ``high``."""
    id: str | None
    """Beta ``item_reference``: the id of the referenced item."""


@frozen(kw_only=True)
class McpTool(Model):
    """A tool an MCP server offers, as an ``mcp_list_tools`` item lists it."""

    name: str | None
    """The tool's name."""
    description: str | None
    """What it does."""
    input_schema: Mapping[str, Any] | None
    """JSON Schema of its arguments."""
    annotations: Mapping[str, Any] | None
    """Extra information about the tool, such as hints that it only reads."""


@frozen(kw_only=True)
class McpError(Model):
    """Why an MCP tool call failed."""

    type: str | None
    """``protocol_error``, ``tool_execution_error`` or ``http_error``."""
    code: int | None
    """Error code of a protocol or HTTP error."""
    message: str | None
    """Human-readable explanation."""


@frozen(kw_only=True)
class ConversationItem(Model):
    """An item of the conversation.

    One class for every item type: ``message``, ``function_call``, ``function_call_output``,
    ``mcp_call``, ``mcp_list_tools``, ``mcp_approval_request``, ``mcp_approval_response``;
    the fields of the other types are None.
    """

    id: str | None
    """Item id, ``item_...``."""
    object: str | None
    """``realtime.item``."""
    type: str | None
    """The item type (see the class description)."""
    status: str | None
    """``in_progress``, ``completed`` or ``incomplete``."""
    role: str | None
    """message: ``user``, ``assistant`` or ``system``."""
    content: tuple[ContentPart, ...] | None
    """message: the content parts."""
    call_id: str | None
    """function_call and function_call_output: the call id."""
    name: str | None
    """function_call, mcp_call, mcp_approval_request: the tool's name."""
    arguments: str | None
    """function_call, mcp_call, mcp_approval_request: the JSON-encoded arguments."""
    output: str | None
    """function_call_output and mcp_call: the result."""
    server_label: str | None
    """mcp_*: the MCP server."""
    tools: tuple[McpTool, ...] | None
    """mcp_list_tools: the server's tools."""
    error: McpError | None
    """mcp_call: why the call failed, if it did."""
    approval_request_id: str | None
    """mcp_call and mcp_approval_response: the approval request answered."""
    approve: bool | None
    """mcp_approval_response: whether the call was approved."""
    reason: str | None
    """mcp_approval_response: why."""


@frozen(kw_only=True)
class Conversation(Model):
    """The conversation, as ``conversation.created`` announces it."""

    id: str | None
    """Conversation id, ``conv_...``."""
    object: str | None
    """``realtime.conversation``."""


# --- responses ------------------------------------------------------------------------------


@frozen(kw_only=True)
class ErrorDetail(Model):
    """What went wrong: in ``error`` events, failed transcriptions and failed responses."""

    type: str | None
    """Category, e.g. ``invalid_request_error``, ``server_error``."""
    code: str | None
    """Machine-readable code, e.g. ``session_expired``; None on some older servers."""
    message: str | None
    """Human-readable explanation."""
    param: str | None
    """The parameter at fault, if any."""
    event_id: str | None
    """The ``event_id`` of our client event that caused the error, if any."""


@frozen(kw_only=True)
class ResponseStatusDetails(Model):
    """Why a response ended the way it did."""

    type: str | None
    """``completed``, ``cancelled``, ``incomplete`` or ``failed``."""
    reason: str | None
    """``turn_detected``, ``client_cancelled``, ``max_output_tokens`` or ``content_filter``."""
    error: ErrorDetail | None
    """For failed responses: what went wrong."""


@frozen(kw_only=True)
class TokenDetails(Model):
    """Tokens broken down by modality."""

    text_tokens: int | None
    """Text tokens."""
    audio_tokens: int | None
    """Audio tokens."""
    image_tokens: int | None
    """Image tokens."""


@frozen(kw_only=True)
class InputTokenDetails(TokenDetails):
    """Input tokens broken down by modality, with the cached share."""

    cached_tokens: int | None
    """Input tokens served from the cache."""
    cached_tokens_details: TokenDetails | None
    """Cached tokens broken down by modality."""


@frozen(kw_only=True)
class _TokenCounts(Model):
    """Token totals shared by response and transcription usage."""

    total_tokens: int | None
    """Input plus output tokens."""
    input_tokens: int | None
    """Input tokens."""
    output_tokens: int | None
    """Output tokens."""


@frozen(kw_only=True)
class Usage(_TokenCounts):
    """Token usage of a response, on ``response.done``."""

    input_token_details: InputTokenDetails | None
    """Input tokens by modality, with the cached share."""
    output_token_details: TokenDetails | None
    """Output tokens by modality."""


@frozen(kw_only=True)
class TranscriptionUsage(_TokenCounts):
    """What transcribing input audio cost: tokens, or seconds of audio."""

    type: str | None
    """``tokens`` or ``duration``."""
    input_token_details: TokenDetails | None
    """tokens: input tokens by modality."""
    seconds: float | None
    """duration: seconds of audio transcribed."""


@frozen(kw_only=True)
class ResponseAudio(Model):
    """GA ``response.audio``."""

    output: AudioOutput | None
    """Format and voice of the response's audio."""


@frozen(kw_only=True)
class Response(Model):
    """A model response, as ``response.created`` and ``response.done`` carry it."""

    id: str | None
    """Response id, ``resp_...``."""
    object: str | None
    """``realtime.response``."""
    status: str | None
    """``in_progress``, ``completed``, ``cancelled``, ``failed`` or ``incomplete``."""
    status_details: ResponseStatusDetails | None
    """Why a response did not complete, when it did not."""
    output: tuple[ConversationItem, ...] | None
    """The items the response produced."""
    usage: Usage | None
    """Token counts, on ``response.done``."""
    conversation_id: str | None
    """The conversation the response belongs to (None for out-of-band responses)."""
    metadata: Mapping[str, Any] | None
    """Metadata given in ``response.create``."""
    max_output_tokens: int | str | None
    """A number or ``"inf"``."""
    output_modalities: Sequence[str] | None
    """GA: ``["text"]`` or ``["audio"]``."""
    audio: ResponseAudio | None
    """GA: format and voice of the audio output."""
    modalities: Sequence[str] | None
    """Beta: e.g. ``["text", "audio"]``."""
    voice: str | None
    """Beta: the output voice."""
    output_audio_format: str | None
    """Beta: ``pcm16``, ``g711_ulaw`` or ``g711_alaw``."""
    temperature: float | None
    """Beta: sampling temperature."""


@frozen(kw_only=True)
class RateLimit(Model):
    """One rate limit as ``rate_limits.updated`` reports it."""

    name: str | None
    """``requests`` or ``tokens``."""
    limit: int | None
    """The maximum allowed."""
    remaining: int | None
    """What is left now."""
    reset_seconds: float | None
    """Seconds until the limit resets."""


# --- input audio transcription --------------------------------------------------------------


@frozen(kw_only=True)
class Logprob(Model):
    """The log probability of one token of a transcription."""

    token: str | None
    """The token."""
    logprob: float | None
    """Its log probability."""
    bytes: Sequence[int] | None
    """The token's UTF-8 bytes."""


@frozen(kw_only=True)
class DetectedLanguage(Model):
    """A language the transcription found in the audio."""

    code: str | None
    """ISO-639-1 code, e.g. ``en``."""
