"""The conveniences of :class:`~realtime_sync.RealtimeClient` for conversations: one-call
turns, streaming handles, tools, audio in and interruption (recording and the event iterator
are the connection mixins', shared with the translation client).

A mixin over the client's wiring: each method here builds on the typed senders and the
dispatcher's reducers (turns, conversation state, tool runner, playback).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from . import audio
from ._dispatch import Dispatcher
from ._errors import InvalidEventError, WouldDeadlockError
from ._interruption import Interruption, Playback
from ._models import Model, to_json
from ._objects import Session
from ._resources import ConversationResource, InputAudioBufferResource, input_audio_format
from ._tools import ToolRegistry
from ._transcription import transcribe as _transcribe
from ._turns import Reply, ResponseHandle, Turns

__all__ = ["Conversations"]

F = TypeVar("F", bound=Callable[..., Any])


class Conversations:
    """Conversation methods of the client (see the module description)."""

    tools: ToolRegistry
    conversation: ConversationResource
    input_audio_buffer: InputAudioBufferResource
    _dispatcher: Dispatcher
    _turns: Turns
    _playback: Playback

    if TYPE_CHECKING:  # provided by the client

        @property
        def _session(self) -> Session | None: ...

        def send(self, event: Mapping[str, Any] | Model) -> str: ...

    def send_text(
        self,
        text: str,
        *,
        timeout: float | None = None,
        response: Mapping[str, Any] | Model | None = None,
    ) -> Reply:
        """Say ``text`` as the user and block until the model's response is done.

        Returns the :class:`Reply`: ``text``, ``transcript``, ``audio``, ``function_calls``,
        ``usage``, ``status``, ``output``. ``response`` overrides session settings for this
        response (as in ``response.create``). If a response is in progress, this one is
        asked for when it is done. Raises what :meth:`ResponseHandle.wait` raises, and
        :class:`RealtimeTimeoutError` after ``timeout`` seconds (the response goes on).
        """
        if not isinstance(text, str):
            raise InvalidEventError(f"text must be a str, not {type(text).__name__}")
        message = {
            "type": "conversation.item.create",
            "item": {
                # Our own id: after a reconnect, the turn can tell whether it arrived.
                "id": f"item_{os.urandom(8).hex()}",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            },
        }
        return self._create_response(response, (message,)).wait(timeout)

    def create_response(
        self, *, response: Mapping[str, Any] | Model | None = None
    ) -> ResponseHandle:
        """Ask for a response without waiting: returns a :class:`ResponseHandle` to
        ``wait()`` on, ``cancel()``, or stream (``text_stream()``, ``transcript_stream()``,
        ``audio_stream()``) in this thread. Queued while another response is in progress.
        """
        return self._create_response(response, ())

    def _create_response(
        self, response: Mapping[str, Any] | Model | None, preface: tuple[Mapping[str, Any], ...]
    ) -> ResponseHandle:
        if self._dispatcher.on_dispatcher_thread():
            raise WouldDeadlockError(
                "a blocking turn from an event handler: handlers run on the dispatcher thread, "
                "which delivers the response. Send response.create instead, or use a thread."
            )
        request = to_json(response) if response is not None else None
        return self._turns.request(request, preface)

    def append_audio(self, source: audio.AudioSource, *, chunk_ms: int = 100) -> float:
        """Send audio to the input buffer in ``chunk_ms`` pieces; return its duration (ms).

        ``source`` is a WAV file (path or binary file object, any rate, channels and
        8/16/24/32-bit samples), an :class:`~realtime_sync.audio.AudioClip`, or raw PCM16
        at 24 kHz mono. It is converted to the session's input format first (24 kHz PCM16,
        or 8 kHz G.711 μ-law/A-law), so nothing is sent if it cannot be.
        """
        fmt = input_audio_format(self._session)
        try:
            data = audio.encode_for_format(source, fmt)
        except ValueError as exc:
            raise InvalidEventError(f"audio: {exc}") from exc
        rate, width = audio.format_rate(fmt), audio.format_sample_width(fmt)
        try:
            pieces = audio.chunks(data, ms=chunk_ms, rate=rate, sample_width=width)
        except ValueError as exc:
            raise InvalidEventError(f"chunk_ms: {exc}") from exc
        for piece in pieces:
            self.input_audio_buffer.append(audio=piece)
        return audio.duration_ms(data, rate=rate, sample_width=width)

    transcribe = _transcribe
    """Transcribe audio on this connection, yielding the transcript as it arrives (see
    :func:`realtime_sync._transcription.transcribe`)."""

    @overload
    def tool(self, function: F, /) -> F: ...
    @overload
    def tool(
        self,
        function: None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Callable[[F], F]: ...

    def tool(
        self,
        function: F | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> F | Callable[[F], F]:
        """Register a function the model may call, as a decorator (``@client.tool`` or
        ``@client.tool(timeout=5)``). Its JSON schema comes from the signature, the
        annotations and the docstring unless ``parameters`` gives it; the session's tool
        list follows. When the model calls it, it runs on a daemon thread of its own (never the
        dispatcher thread), within ``timeout`` seconds; what it returns, or raises, is
        sent back to the model, and one response follows each batch of calls."""
        if function is None:
            return self.tools.tool(
                name=name, description=description, parameters=parameters, timeout=timeout
            )
        return self.tools.add(
            function, name=name, description=description, parameters=parameters, timeout=timeout
        )

    def add_tool(
        self,
        function: F,
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> F:
        """Register ``function`` as a tool (see :meth:`tool`); return it."""
        return self.tools.add(
            function, name=name, description=description, parameters=parameters, timeout=timeout
        )

    def report_playback(self, played_ms: float, *, item_id: str | None = None) -> None:
        """Tell the client how much of the model's audio has been played (ms), for the
        latest assistant audio item or ``item_id``; interruptions cut it there."""
        self._playback.report(played_ms, item_id=item_id)

    def interrupt(
        self, played_ms: float | None = None, *, item_id: str | None = None
    ) -> Interruption:
        """The user cut in: cancel the response in progress, and truncate the assistant's
        audio item at ``played_ms`` (default: the last :meth:`report_playback`), clamped to
        the audio received, or delete the item when nothing of it was played."""
        return self._playback.interrupt(played_ms, item_id=item_id)
