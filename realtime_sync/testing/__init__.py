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

**Responses** are text: the server cannot speak. Sessions start with text output (GA
``output_modalities: ["text"]``, beta ``modalities: ["text"]``); a client may ask for audio
output (``session.update`` stores and echoes it, ``response.create`` accepts it, as real
servers do), but the answer stays text and every response object reports the modalities it
actually has, ``["text"]``. A response is active from its ``response.create`` until its
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

``response.create`` honours ``response.metadata`` (echoed in the response),
``response.conversation == "none"`` (no conversation events, ``conversation_id`` ``null``),
``response.input`` (items and item references: the prompt instead of the conversation) and
``response.instructions`` (only in the usage estimate).

**Transcription sessions**: a GA ``session.update`` whose session has ``type:
"transcription"`` turns the session into a transcription session (same id; fields
``type``, ``audio.input`` and ``include``) and answers ``session.updated`` with it; it
cannot turn back. ``transcription_session.update`` (beta, also accepted on GA connections)
answers ``transcription_session.updated`` with a transcription session shaped like the beta
specification's (``id``, ``object``, ``input_audio_format``, ``input_audio_transcription``,
``turn_detection``, ``input_audio_noise_reduction``, ``include``), whose
``input_audio_format`` then applies to commits. Neither restricts which other events the
connection may send.
"""

import typing as _typing

from .._endpoints import Dialect
from ._admission import AuthMethod
from ._catalogue import KNOWN_MODELS
from ._inprocess import InProcessTransport
from ._recorder import ConnectionRecord
from ._simulator import SessionSimulator, SimulatorOptions

if _typing.TYPE_CHECKING:
    from ._server import LocalRealtimeServer

__all__ = [
    "KNOWN_MODELS",
    "AuthMethod",
    "ConnectionRecord",
    "Dialect",
    "InProcessTransport",
    "LocalRealtimeServer",
    "SessionSimulator",
    "SimulatorOptions",
]


def __getattr__(name: str) -> _typing.Any:
    # Imported on first use: only the socket server needs the optional websockets package.
    if name == "LocalRealtimeServer":
        from ._server import LocalRealtimeServer

        globals()[name] = LocalRealtimeServer
        return LocalRealtimeServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
