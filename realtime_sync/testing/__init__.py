"""Test helpers: a local Realtime server to run clients against, and the same sessions
in-process.

:class:`LocalRealtimeServer` is a real WebSocket server on loopback; it needs the optional
``websockets`` dependency (``pip install realtime_sync[server]``)::

    from realtime_sync.testing import LocalRealtimeServer

    with LocalRealtimeServer(api_key="sk-test", reply="Hi there") as server:
        ...  # connect a client to server.url (or server.azure_endpoint)
        server.wait_for_received("response.create")

:class:`InProcessTransport` runs the same simulated sessions without sockets or extras,
for fast unit tests (like httpx's ``MockTransport``)::

    transport = InProcessTransport(api_key="sk-test", reply="Hi there")
    with RealtimeClient(api_key="sk-test", transport=transport) as client:
        ...

**Sessions** answer every client event type of both dialects as a real server would:
``session.update``, ``transcription_session.update``, ``conversation.item.create`` /
``delete`` / ``retrieve`` / ``truncate``, ``input_audio_buffer.append`` / ``commit`` /
``clear``, ``output_audio_buffer.clear``, ``response.create`` and ``response.cancel``.
Invalid input gets an ``error`` event and the connection stays open, like real servers:
``invalid_json`` (a text frame that is not JSON), ``invalid_event`` (JSON that is not an
object, has no string ``type``, or a binary frame), ``invalid_value`` (param ``"type"``
for an unknown event type; also bad values elsewhere), ``invalid_type``,
``missing_required_parameter``, ``unknown_parameter`` (malformed fields),
``input_audio_buffer_commit_empty`` (less than 100 ms of audio). An error's
``error.event_id`` names the client event that caused it, or is ``null`` when that event
had none. Unknown item ids in ``conversation.item.delete`` / ``retrieve`` / ``truncate``
(and in ``previous_item_id`` or ``item_reference``) get ``invalid_value`` with the
parameter named; the specification only says "an error".

**Responses** answer the last user text: ``reply`` (a string or a callable), by default
``"You said: <text>"`` or a greeting. Sessions start with text output (GA
``output_modalities: ["text"]``, beta ``modalities: ["text"]``), so text tests need no
setup; when the response's output modalities (its own, else the session's) include
``"audio"``, the answer is spoken (see *Speech* below). Every response object reports the
modalities it has (GA ``["text"]`` or ``["audio"]``, beta ``["text"]`` or ``["text",
"audio"]``) and its output audio format. A response is active from its ``response.create`` until its
``response.done``; then ``rate_limits.updated`` follows. While one is active:

- another ``response.create`` gets an ``error`` with code
  ``conversation_already_has_active_response`` (naming the active response; the active one
  goes on). Out-of-band responses (``response.conversation == "none"``) count like any
  other: a connection has at most one active response (real servers allow out-of-band
  responses in parallel with the conversation's);
- ``response.cancel`` (with no ``response_id``, or the active one's) stops the stream: the
  done events of what was produced (``response.output_text.done`` / ``response.text.done``,
  ``response.content_part.done``, ``response.output_item.done`` with item status
  ``incomplete``, and in GA ``conversation.item.done``), then ``response.done`` with status
  ``cancelled`` and ``status_details`` ``{"type": "cancelled", "reason":
  "client_cancelled"}``, then ``rate_limits.updated``. The partial item stays in the
  conversation. A cancel naming another response gets ``invalid_value`` (param
  ``response_id``); a cancel with no active response (or one already cancelled) gets
  ``response_cancel_not_active``;
- ``output_audio_buffer.clear`` gets ``output_audio_buffer.cleared`` with the active
  response's id (when idle: the last response's id, or ``null`` before any).

Every ``response.done`` carries ``usage`` estimates: a text token per 4 characters (text,
transcripts, function arguments and outputs), an audio token per 50 ms of audio (the
assistant's speech out; committed user audio and earlier spoken answers in the prompt,
under ``input_token_details.audio_tokens``).

``response.create`` honours ``response.metadata`` (echoed in the response),
``response.conversation == "none"`` (no conversation events, ``conversation_id`` ``null``),
``response.input`` (items and item references: the prompt instead of the conversation) and
``response.instructions`` (only in the usage estimate), ``response.tools`` and
``response.tool_choice`` (function calls), the output modalities and the output audio
format (GA ``response.audio.output.format``, beta ``response.output_audio_format``).

**Speech.** A spoken answer comes in the order real servers use:
``response.created``, ``response.output_item.added``, ``conversation.item.added`` (beta
``conversation.item.created``), ``response.content_part.added`` (part ``{"type": "audio",
"transcript": ""}``), then for every 100 ms of audio a ``response.output_audio_transcript.delta``
with the characters whose sound starts in it (when there are any) and a
``response.output_audio.delta`` with the base64 audio (beta ``response.audio_transcript.delta``
and ``response.audio.delta``), then ``response.output_audio.done``,
``response.output_audio_transcript.done`` (the transcript), ``response.content_part.done``,
``response.output_item.done``, in GA ``conversation.item.done``, ``response.done`` (the item's
content ``{"type": "output_audio", "transcript": ...}``, beta ``{"type": "audio", ...}``) and
``rate_limits.updated``. A cancel ends it the same way, with what was sent.
``output_audio_buffer.started`` / ``stopped`` are not sent: the official specification
documents them for WebRTC and SIP connections only, and these are WebSocket sessions.

The voice is a deterministic synthesiser, not a voice: each character of the transcript
sounds for 60 ms as a tone of its own pitch (200 Hz for a space up to 3.3 kHz), so the
audio lasts ``60 ms * len(transcript)``, in the session's output format: GA
``audio.output.format`` ``{"type": "audio/pcm", "rate": 24000}`` (PCM16 at 24 kHz),
``audio/pcmu`` or ``audio/pcma`` (G.711 at 8 kHz); beta ``output_audio_format`` ``pcm16``,
``g711_ulaw`` or ``g711_alaw``. :func:`synthesize_speech` makes the same speech for any text
(to send as user audio) and :func:`recognize_speech` reads it back (printable ASCII comes
back exactly, whitespace as a space, anything else as ``"?"``). ``delta_interval`` waits
before every delta; ``audio_pacing`` holds audio deltas to a speed relative to real time
(``None`` or 0 as fast as possible, 1.0 each delta when the audio before it has played,
2.0 twice as fast); the longer wait wins.

``conversation.item.truncate`` on a spoken assistant item (even one still streaming)
cuts its audio at ``audio_end_ms``; the item keeps the transcript of the characters fully
heard by then (``audio_end_ms // 60``), and later truncations can only cut shorter. Beyond
the audio the item has, it gets ``invalid_value`` (param ``audio_end_ms``) with the message
real servers send, ``"Audio content of 1200ms is already shorter than 1500ms"``. A text
answer has no audio to check against: any ``audio_end_ms`` is accepted.

**Input audio.** ``input_audio_buffer.commit`` makes a user item of the buffer (in the
session's input format). The server hears it at once, for the answer and function calls: the
``transcribe`` callable's result when one is given (it gets the committed bytes), else the
text of its own synthesised speech, else ``"(<n> ms of audio)"``. When the session
transcribes input audio (GA ``audio.input.transcription``, beta
``input_audio_transcription`` or a transcription session), the item's events are followed
by ``conversation.item.input_audio_transcription.delta`` events (a word each; ``whisper-1``:
GA one delta with the whole text, beta none) and ``...completed`` with the transcript and
``usage`` (``whisper-1``: duration; others: tokens), and ``logprobs`` when ``include`` asks
for them; the stored item gets the transcript. With ``late_transcripts=True`` they are held
until a response is in progress and sent right after its ``response.created``, as real
servers often deliver them: attach them to user items by ``item_id``.

**Turn detection.** Sessions start with server VAD on, as real ones do (GA
``audio.input.turn_detection``, beta ``turn_detection``: ``server_vad``, threshold 0.5,
300 ms prefix padding, 200 ms of silence), and listen to the audio appended: 10 ms frames
whose level reaches the threshold (0.0 to 1.0 mapped onto -60 to 0 dBFS: the synthesised
speech is speech, silence and low noise are not, nothing at 1.0) are speech. Speech starting sends
``input_audio_buffer.speech_started`` (``audio_start_ms`` less the prefix padding, and the
``item_id`` the turn will get) and, with ``interrupt_response``, cancels a response in
progress in the default conversation (``response.done`` ``cancelled``, reason
``turn_detected``); ``silence_duration_ms`` of silence sends ``speech_stopped``
(``audio_end_ms``), commits the turn's audio as a manual commit does and, with
``create_response``, answers. ``semantic_vad`` waits 8 s, 4 s or 2 s of silence for
eagerness ``low``, ``medium``/``auto``, ``high``. GA ``idle_timeout_ms`` sends
``input_audio_buffer.timeout_triggered`` once that much audio without speech follows the
end of the last answer's audio, commits the buffer and answers. Times are ms of audio
appended since the session started. ``turn_detection: null`` leaves commits to the client.
The details are in :mod:`realtime_sync.testing._input_audio`.

**Function calls.** A last user text (typed or heard) with ``call <name> <json-object>``
requests, such as ``call get_weather {"city": "Paris"}``, gets one ``function_call`` item per
request whose ``<name>`` is a function tool of the response (its ``tools``, else the
session's) unless ``tool_choice`` is ``"none"``: ``response.output_item.added``, the
conversation event, ``response.function_call_arguments.delta`` events,
``response.function_call_arguments.done`` (GA with the function's ``name``),
``response.output_item.done`` (in GA ``conversation.item.done``), one item after the other,
then ``response.done`` (status ``completed``). Once ``function_call_output`` items follow
the last user message, the next answer (spoken or text) reports them, ``"Result of <name>:
<output>"`` per output, unless ``reply`` is given; no further call is made.

**Transcription sessions**: a GA ``session.update`` whose session has ``type:
"transcription"`` turns the session into a transcription session (same id; fields
``type``, ``audio.input`` and ``include``) and answers ``session.updated`` with it; it
cannot turn back. ``transcription_session.update`` (beta, also accepted on GA connections)
answers ``transcription_session.updated`` with a transcription session shaped like the beta
specification's (``id``, ``object``, ``input_audio_format``, ``input_audio_transcription``,
``turn_detection``, ``input_audio_noise_reduction``, ``include``), whose
``input_audio_format`` then applies to commits. Neither restricts which other events the
connection may send. A connection with ``intent=transcription`` in its query needs no model
and starts as a transcription session (turn detection: server VAD, 500 ms of silence; no
transcription model until the client names one): GA ``session.created`` with the GA
transcription session, beta ``transcription_session.created`` with the beta one (as OpenAI's
beta interface opened them; no official type declares that event). Another ``intent`` gets
``invalid_value`` (param ``intent``) and close 4000.

**Conversation items** may carry the client's own ``id`` (kept, as real servers keep it,
so a client can replay its history under the same ids); a duplicate gets
``invalid_value`` (param ``item.id``, "Item with id '...' already exists in the
conversation."). ``previous_item_id`` places an item after another, ``"root"`` at the
start. Each :class:`ConnectionRecord` holds the server's conversation (``items``, in
conversation order) and session configuration (``session``) as they were when
:attr:`~LocalRealtimeServer.connections` was read, so a test can check what a client left
on the server.

**Scripting.** A test declares what the model answers on the server's ``script``
(:class:`Script`), per turn in order or by rule, and checks what the client sent::

    server.script.respond("Hi there")                                # the next response
    server.script.respond(ToolCall("get_weather", {"city": "Paris"}), delay=0.2)
    server.script.when(contains="bye").respond(Speech("Goodbye!"))  # before turn answers
    server.script.respond(Failure("rate_limit_exceeded", "Slow down"))  # status "failed"
    server.script.respond(Refusal("rate_limit_exceeded", "Slow down"))   # an error event
    ...
    server.script.assert_sent("session.update", session={"instructions": "Be brief."})
    server.script.verify()  # AssertionError naming answers never used

A response takes the first rule that holds, else the next turn answer, else ``reply``,
else the server's own answer. The pytest plugin's ``realtime_server`` and
``realtime_client`` fixtures verify the script after each test
(:mod:`realtime_sync.testing.pytest_plugin`).

**Faults.** Both servers take the same test controls (thread-safe; the socket server's
``answer_pings`` has no in-process counterpart), each emulating what real endpoints and
networks do:

- ``reject_handshake(status, body, headers, times=)``: an HTTP answer instead of the
  upgrade (429 with ``Retry-After``, 5xx...);
- ``fail_after_accept(code, error, times=)``: upgrade, ``error``, close (3000, 4000);
- ``hang_handshakes(times=)``: no answer to the upgrade at all, until the client gives up
  (recorded with status 0);
- ``drop_during_response(after_deltas=1, times=1)``: the connection cut without a close
  frame right after a response's n-th delta, so no ``response.done`` comes;
- ``drop_connections()`` / ``close_connections(code, reason)``: end open connections now;
- ``half_open(enabled=True)``: a half-open peer: no pongs, no events; client events are
  recorded but not handled; closes still go out;
- ``push(event)``: any event or raw (malformed) frame (it never hangs the test: a client
  that stopped reading is cut); ``storm_errors(count, code=,
  message=, interval=)``: a burst of ``error`` events;
- ``expire_sessions()``: ``session_expired`` and close 1001 now (``session_lifetime=`` does
  it after a while);
- ``clear_faults()`` cancels the counted ones (``times=None``: until then).

The socket server also serves TLS (``ssl_context=``: ``wss://`` and ``https://``
addresses), e.g. with a certificate from ``trustme`` for ``127.0.0.1``.

**Playback.** ``LocalRealtimeServer(playback=...)`` plays a recording instead of simulating:
the server side of a file written by ``RealtimeClient.record()`` (or a server-side trace,
one event per line) goes to every client that connects, as recorded, each turn released
when the client sends the event the recorded server answered, at the recorded pace
(``Playback.load(path, speed=None)``: as fast as possible). ``python -m realtime_sync
replay FILE`` serves one. The rules are in :mod:`realtime_sync.testing._playback`.

**Calls, client secrets, webhooks.** The socket server also serves the REST endpoints at
``server.http_base_url`` (``.../v1``; Azure's ``/openai/v1`` too): ``POST
/realtime/calls/{id}/accept|reject|refer|hangup`` and ``POST /realtime/client_secrets``
(and ``/realtime/translations/client_secrets``), with the server's key, and ``POST
/realtime/calls``, which creates a WebRTC call from an SDP offer (with the server's key or
an ``ek_`` one): accepted at once, answered with a well-formed SDP answer, no media.
``server.calls.create_incoming()`` rings it: an :class:`IncomingCall` with its ``call_id``
and the ``realtime.call.incoming`` webhook signed with ``server.calls.webhook_secret``
(:func:`sign_webhook` signs any payload the same way). An accepted call can be joined at
``/v1/realtime?call_id=...``: its session starts from the ``accept`` configuration, and
every join of the call shares that one session (conversation, configuration, responses)
until hangup; an unknown or unaccepted call gets an ``error`` (``call_not_found``) and
close 4000. Minted
``ek_...`` keys open sessions (header or subprotocol) until they expire
(``server.calls.clock`` decides when), starting from their session configuration.
``server.calls.fail_next(status)`` and ``delay_next(seconds)`` inject HTTP failures.

**Translation.** ``/v1/realtime/translations?model=gpt-realtime-translate`` (on the same
port as ``server.url``) plays translation sessions (:class:`TranslationSimulator`): the
input is cut into utterances at 200 ms of silence, each heard as the server's own speech
and translated to :func:`translate_text` (``"[<language>] <text>"``, language ``es`` until
``audio.output.language`` is set), sent as transcript deltas and synthesised speech; see
:mod:`realtime_sync.testing._translation`.
"""

import typing as _typing

from .._lazy import lazy_exports as _lazy_exports

if _typing.TYPE_CHECKING:
    from .._endpoints import Dialect
    from ._admission import AuthMethod
    from ._answers import Failure, Refusal, Speech, Text, ToolCall
    from ._calls import CallRecord, IncomingCall, LocalCalls, sign_webhook
    from ._catalogue import KNOWN_MODELS
    from ._inprocess import InProcessTransport
    from ._playback import Playback, PlaybackError
    from ._recorder import ConnectionRecord
    from ._script import Rule, Script, ScriptedAnswer, Turn
    from ._server import LocalRealtimeServer
    from ._simulator import SessionSimulator, SimulatorOptions
    from ._translation import TRANSLATION_MODELS, TranslationSimulator, translate_text
    from ._voice import recognize_speech, synthesize_speech

__all__ = [
    "KNOWN_MODELS",
    "TRANSLATION_MODELS",
    "AuthMethod",
    "CallRecord",
    "ConnectionRecord",
    "Dialect",
    "Failure",
    "InProcessTransport",
    "IncomingCall",
    "LocalCalls",
    "LocalRealtimeServer",
    "Playback",
    "PlaybackError",
    "Refusal",
    "Rule",
    "Script",
    "ScriptedAnswer",
    "SessionSimulator",
    "SimulatorOptions",
    "Speech",
    "Text",
    "ToolCall",
    "TranslationSimulator",
    "Turn",
    "recognize_speech",
    "sign_webhook",
    "synthesize_speech",
    "translate_text",
]


# Imported on first use (see realtime_sync._lazy): only what a test uses is loaded, and the
# socket server (which needs the optional websockets package) only when it is used.
if not _typing.TYPE_CHECKING:
    __getattr__, __dir__ = _lazy_exports(
        __name__,
        {
            ".._endpoints": ("Dialect",),
            "._admission": ("AuthMethod",),
            "._answers": ("Failure", "Refusal", "Speech", "Text", "ToolCall"),
            "._calls": ("CallRecord", "IncomingCall", "LocalCalls", "sign_webhook"),
            "._catalogue": ("KNOWN_MODELS",),
            "._inprocess": ("InProcessTransport",),
            "._playback": ("Playback", "PlaybackError"),
            "._recorder": ("ConnectionRecord",),
            "._script": ("Rule", "Script", "ScriptedAnswer", "Turn"),
            "._simulator": ("SessionSimulator", "SimulatorOptions"),
            "._translation": ("TRANSLATION_MODELS", "TranslationSimulator", "translate_text"),
            "._voice": ("recognize_speech", "synthesize_speech"),
            "._server": ("LocalRealtimeServer",),
        },
    )
