"""Realtime translation: a client for ``/v1/realtime/translations``.

:class:`RealtimeTranslationClient` is built on the same machinery as
:class:`~realtime_sync.RealtimeClient`: the endpoint and key handling of ``_endpoints``,
the transport, the dispatcher (handlers by type, one thread, waits with timeouts), the
links (``connect``/``close``/``send``) and the supervisor, with a decoder of its own
(:mod:`._translation_events`). A translation session has no conversation, responses or
tools, so none of the Realtime client's state reducers run here.

It does not reconnect: a translation is a stream whose timing (``elapsed_ms``) starts with
the session, and a lost connection loses the audio the server was holding, so a new
session cannot carry on where the old one was (the official client does not replay either).
A loss ends the client with ``client.closed``; ``connect()`` starts a new session. Nor does
it roll an expiring session over, for the same reason: ``client.session_expiring`` comes
``expiring_notice`` seconds before the session's ``expires_at`` (else 60 minutes), and the
server then ends it.
"""

from __future__ import annotations

import itertools
import os
import queue
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from typing import Any, TypeAlias, cast

from attrs import field, frozen

from . import audio
from ._client_events import ClientEvent
from ._conversation import ConversationState
from ._dispatch import Dispatcher, HandlerRegistry
from ._endpoints import OPENAI_BASE_URL, Auth, check_transport_security, openai_headers
from ._endpoints import openai_target as _openai_target
from ._errors import (
    ClientClosed,
    ConfigurationError,
    ConnectionClosed,
    InvalidEventError,
    NotConnectedError,
    RealtimeError,
    RealtimeTimeoutError,
    TransportError,
    WouldDeadlockError,
)
from ._failures import error_for
from ._handlers import Handlers
from ._links import Links, make_transport
from ._models import Model, to_json
from ._reconnect import ReconnectPolicy
from ._secrets import install_log_filter
from ._server_events import ErrorEvent
from ._supervisor import Supervisor
from ._translation_events import (
    TRANSLATION_SERVER_EVENTS,
    TranslationInputAudioBufferAppendEvent,
    TranslationSession,
    TranslationSessionClosedEvent,
    TranslationSessionCloseEvent,
    TranslationSessionEvent,
    TranslationSessionUpdateEvent,
    check_translation_pattern,
    decode_translation_event,
)
from ._transport import Transport
from .audio import pcm16_to_base64 as _base64

__all__ = [
    "DEFAULT_TRANSLATION_MODEL",
    "InputTranscriptDelta",
    "OutputAudioChunk",
    "OutputTranscriptDelta",
    "RealtimeTranslationClient",
    "TranslationPiece",
]

DEFAULT_TRANSLATION_MODEL = "gpt-realtime-translate"
"""The translation model OpenAI's guide names (the ``openai`` package takes any string)."""
_PATH = "/realtime/translations"
_FRAME_MS = 200  # the server translates in 200 ms frames: append that much at a time
# What translate() listens to: all but the session's start, and the connection's end.
_EVENTS = (*sorted(TRANSLATION_SERVER_EVENTS - {"session.created"}), "client.closed")

TranslationSource: TypeAlias = audio.AudioSource | Iterable[bytes | audio.AudioClip]
"""A WAV file, an :class:`~realtime_sync.audio.AudioClip`, PCM16 24 kHz mono bytes, or an
iterable of chunks (PCM16 24 kHz mono bytes or clips), e.g. from a microphone."""


@frozen
class InputTranscriptDelta:
    """Source-language text of what was said (with ``transcription_model``)."""

    text: str
    """The new text, to append as is."""
    elapsed_ms: int | None
    """Where in the input it belongs."""


@frozen
class OutputTranscriptDelta:
    """Translated text."""

    text: str
    """The new text, to append as is."""
    elapsed_ms: int | None
    """Where in the input it belongs."""


@frozen
class OutputAudioChunk:
    """Translated speech: PCM16 mono at :attr:`sample_rate`."""

    audio: bytes = field(repr=lambda data: f"<{len(data)} bytes>")
    """The audio bytes."""
    elapsed_ms: int | None
    """Where in the input it belongs."""
    sample_rate: int
    """Samples per second (24000 unless the server says otherwise)."""


TranslationPiece: TypeAlias = InputTranscriptDelta | OutputTranscriptDelta | OutputAudioChunk


class _InputAudioBufferResource:
    """``session.input_audio_buffer.append``."""

    __slots__ = ("_client",)

    def __init__(self, client: RealtimeTranslationClient) -> None:
        self._client = client

    def append(
        self, *, audio: bytes | bytearray | memoryview | str, event_id: str | None = None
    ) -> str:
        """Send ``session.input_audio_buffer.append`` with PCM16 24 kHz mono audio (raw
        bytes, or base64 text as is); return the event id."""
        text = audio if isinstance(audio, str) else _base64(audio)
        return self._client._send_typed(
            TranslationInputAudioBufferAppendEvent, event_id, audio=text
        )


class _SessionResource:
    """``client.session``: the current translation session, ``update()`` and ``close()``;
    ``input_audio_buffer.append()`` as in the official SDK."""

    __slots__ = ("_client", "input_audio_buffer")

    def __init__(self, client: RealtimeTranslationClient) -> None:
        self._client = client
        self.input_audio_buffer = _InputAudioBufferResource(client)

    @property
    def current(self) -> TranslationSession | None:
        """The session as of the last ``session.created``/``session.updated``."""
        return self._client._translation_session

    def update(self, *, session: Mapping[str, Any] | Model, event_id: str | None = None) -> str:
        """Send ``session.update`` (``audio.output.language``, ``audio.input.transcription``,
        ``audio.input.noise_reduction``); return the event id."""
        return self._client._send_typed(
            TranslationSessionUpdateEvent, event_id, session=to_json(session)
        )

    def close(self, *, event_id: str | None = None) -> str:
        """Send ``session.close``: the server translates what it holds, then sends
        ``session.closed``. See also :meth:`RealtimeTranslationClient.close_session`."""
        return self._client._send_typed(TranslationSessionCloseEvent, event_id)

    def __getattr__(self, name: str) -> Any:
        current = self._client._translation_session
        if current is None:
            raise AttributeError(f"no session yet, so no {name!r}: connect() first")
        return getattr(current, name)

    def __bool__(self) -> bool:
        return self._client._translation_session is not None


class _Continuous:
    """What the supervisor sees of a translation stream: no turns, nothing to interrupt."""

    def idle(self) -> bool:
        return True

    def interrupt(self, error: BaseException, *, retry: bool) -> None:
        return None


class RealtimeTranslationClient(Links, Handlers):
    """A blocking client for one Realtime translation session at a time.

    >>> client = RealtimeTranslationClient()       # OPENAI_API_KEY from the environment
    >>> with client:                               # returns once session.created arrived
    ...     for piece in client.translate("talk.wav", language="fr"):
    ...         if isinstance(piece, OutputTranscriptDelta):
    ...             print(piece.text, end="", flush=True)

    Handlers (``on``/``once``/``off``, patterns such as ``"session.*"``), ``wait_for`` and
    ``expect``, :meth:`events` and :meth:`record` work as on
    :class:`~realtime_sync.RealtimeClient`, for the translation events and
    ``client.closed``/``client.session_expiring``/``client.handler_error``/
    ``client.invalid_frame``/``client.backlog``. Senders: ``client.session.update(session=...)``,
    ``client.input_audio_buffer.append(audio=...)`` (also
    ``client.session.input_audio_buffer``), ``client.session.close()``; helpers
    :meth:`append_audio`, :meth:`close_session` and :meth:`translate`. Not reconnected
    (see the module description).
    """

    _check_pattern = staticmethod(check_translation_pattern)

    session: _SessionResource
    """The current session (``client.session.id``, ``.current``), ``update()``, ``close()``."""
    input_audio_buffer: _InputAudioBufferResource
    """``append`` of source audio."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        model: str = DEFAULT_TRANSLATION_MODEL,
        url: str | None = None,
        base_url: str | None = None,
        auth: Auth = "header",
        headers: Mapping[str, str] | None = None,
        organization: str | None = None,
        project: str | None = None,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 10.0,
        connect_timeout: float = 10.0,
        close_timeout: float = 5.0,
        send_timeout: float | None = 10.0,
        sslopt: Mapping[str, Any] | None = None,
        ca_certs: str | None = None,
        http_proxy_host: str | None = None,
        http_proxy_port: int | str | None = None,
        http_proxy_auth: tuple[str, str] | None = None,
        http_no_proxy: list[str] | None = None,
        proxy_type: str | None = None,
        transport: Transport | None = None,
        allow_insecure: bool = False,
        backlog_warning: float | None = 1.0,
        expiring_notice: float = 60.0,
    ) -> None:
        """Configure a client; nothing connects until :meth:`connect`.

        Args:
            api_key: API key or ephemeral client secret; defaults to ``OPENAI_API_KEY``.
            model: The translation model (``?model=`` of the URL).
            url: Full endpoint URL, used as given (``model`` is added when absent).
            base_url: API base such as ``https://api.openai.com/v1`` (default
                ``OPENAI_BASE_URL`` or OpenAI's); ``/realtime/translations`` is added.
            auth, headers, organization, project, ping_interval, ping_timeout,
            connect_timeout, close_timeout, send_timeout, sslopt, ca_certs,
            http_proxy_host, http_proxy_port, http_proxy_auth, http_no_proxy, proxy_type,
            transport, allow_insecure, backlog_warning: As for
                :class:`~realtime_sync.RealtimeClient`.
            expiring_notice: Seconds before the session's end at which
                ``client.session_expiring`` is dispatched.
        """
        if not model:
            raise ConfigurationError("a translation needs a model")
        if url is None:
            base = base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL
            url = base.rstrip("/") + _PATH
        self._target = _openai_target(
            api_key=api_key if api_key is not None else os.environ.get("OPENAI_API_KEY"),
            model=model,
            url=url,
            base_url=None,
            auth=auth,
            dialect="ga",
            headers=openai_headers(headers, organization, project),
        )
        check_transport_security(self._target, allow_insecure=allow_insecure)
        self._transport = make_transport(
            transport,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            send_timeout=send_timeout,
            connect_timeout=connect_timeout,
            sslopt=sslopt,
            ca_certs=ca_certs,
            http_proxy_host=http_proxy_host,
            http_proxy_port=http_proxy_port,
            http_proxy_auth=http_proxy_auth,
            http_no_proxy=http_no_proxy,
            proxy_type=proxy_type,
        )
        try:
            lifetime = ReconnectPolicy(rollover=False, expiring_notice=expiring_notice)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        install_log_filter()
        self._connect_timeout = connect_timeout
        self._close_timeout = close_timeout
        self._registry = HandlerRegistry("ga")  # translation names pass through unchanged
        self._init_links()
        self._name = f"realtime_sync-translation-{next(_client_numbers)}"
        self._recording = None
        self._translation_session: TranslationSession | None = None
        self._supervisor = Supervisor(
            None,  # never reconnects (see the module description)
            host=self,
            state=ConversationState(),
            turns=_Continuous(),
            dialect="ga",
            azure=False,
            connect_timeout=connect_timeout,
            submit=lambda core, item: self._dispatcher.submit(core, item),  # noqa: PLW0108
            emit=lambda event: self._dispatcher.emit(event),  # noqa: PLW0108
            source=lambda: self._dispatcher.source,
            name=self._name,
            session_event=TranslationSessionEvent,
            lifetime=lifetime,
        )
        self._dispatcher = Dispatcher(
            self._registry,
            name=self._name,
            reducers=[self._supervisor.receive, self._record_received, self._follow],
            decode=decode_translation_event,
            on_failure=self._dispatcher_failed,
            backlog_warning=backlog_warning,
        )
        self._event_ids = itertools.count(1)
        self._event_id_prefix = f"evt_{os.urandom(6).hex()}_"
        self.session = _SessionResource(self)
        self.input_audio_buffer = self.session.input_audio_buffer

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<RealtimeTranslationClient {self.url} {state}>"

    def __enter__(self) -> RealtimeTranslationClient:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect(self, timeout: float | None = None) -> TranslationSession:  # type: ignore[override]
        """Open a translation session; block until ``session.created``; return the session.

        Raises as :meth:`RealtimeClient.connect` does (:class:`AuthenticationError`,
        :class:`BadRequestError` for an unknown model, :class:`TransportError`,
        :class:`RealtimeTimeoutError`...).
        """
        return cast(TranslationSession, Links.connect(self, timeout))

    def _follow(self, event: Any) -> Any:
        """The dispatcher's reducer: the session's start, configuration and end (the
        connection's core knows the Realtime session events only)."""
        kind = type(event)
        if kind is TranslationSessionEvent:
            self._translation_session = event.session
            core = self._dispatcher.source
            if event.type == "session.created" and core is not None:
                core.started = True
        elif kind is TranslationSessionClosedEvent:
            core = self._dispatcher.source
            if core is not None:
                core.request_close()  # the server closes the socket next: a normal end
        return event

    # --- sending -----------------------------------------------------------------------------

    def _send_typed(self, cls: type[ClientEvent], event_id: str | None, **fields: Any) -> str:
        return self.send(cls.build(event_id=event_id, **fields))

    def append_audio(self, source: audio.AudioSource, *, chunk_ms: int = _FRAME_MS) -> float:
        """Send audio in ``chunk_ms`` pieces (200 ms: the server's frame); return its
        duration in ms. ``source`` is a WAV file (any rate, channels, sample width), an
        :class:`~realtime_sync.audio.AudioClip` or PCM16 24 kHz mono bytes; it is
        converted first, so nothing is sent if it cannot be."""
        pieces = list(_chunks(source, chunk_ms))
        for piece in pieces:
            self.input_audio_buffer.append(audio=piece)
        return sum(_duration_ms(piece) for piece in pieces)

    def close_session(self, timeout: float | None = 30.0) -> TranslationSessionClosedEvent:
        """Send ``session.close``, wait for ``session.closed`` (the output of the audio sent
        so far comes first, to handlers), then close the connection (also when the wait
        fails); return the event. In a handler, send ``session.close()`` instead."""
        if self._dispatcher.on_dispatcher_thread():
            raise WouldDeadlockError(
                "close_session() from an event handler would wait on the dispatcher thread, "
                "which delivers session.closed: call client.session.close() there instead"
            )
        closed = self.expect("session.closed")
        self.session.close()
        try:
            event: TranslationSessionClosedEvent = closed.wait(timeout)
        finally:
            self.close()
        return event

    # --- the helper --------------------------------------------------------------------------

    def translate(
        self,
        source: TranslationSource,
        *,
        language: str | None = None,
        transcription_model: str | None = None,
        realtime: bool = False,
        chunk_ms: int = _FRAME_MS,
        timeout: float = 30.0,
    ) -> Generator[TranslationPiece, None, None]:
        """Translate ``source``, yielding the pieces as they arrive; end the session.

        Args:
            source: A WAV file (path or binary file object), an AudioClip, PCM16 24 kHz
                mono bytes, or an iterable of chunks (such bytes, or clips), such as a
                microphone's.
            language: The language to translate into (``audio.output.language``); None
                keeps the session's.
            transcription_model: Also transcribe the source with this model
                (:class:`InputTranscriptDelta` pieces); None keeps the session's setting.
            realtime: Send the audio at its real pace (an iterable that blocks, like a
                microphone, sets its own pace anyway).
            chunk_ms: Milliseconds of audio per append (the server works in 200 ms).
            timeout: Seconds to wait for each answer: the session update's, and after the
                input ``session.closed``; then :class:`RealtimeTimeoutError`.

        Yields :class:`InputTranscriptDelta`, :class:`OutputTranscriptDelta` and
        :class:`OutputAudioChunk`. At the end of the input it sends ``session.close``,
        yields the rest until ``session.closed`` and closes the connection. Raises the
        matching :class:`APIError` when the server refuses one of its events,
        :class:`ConnectionClosed` (or the error that ended it) when the connection ends
        first, and :class:`WouldDeadlockError` in a handler. Closing the generator early
        stops sending and leaves the session open.
        """
        if self._dispatcher.on_dispatcher_thread():
            raise WouldDeadlockError(
                "translate() from an event handler: handlers run on the dispatcher thread, "
                "which delivers the translation. Call it from another thread."
            )
        if not self.connected:
            raise NotConnectedError("translate(): not connected: call connect() first")
        update: dict[str, Any] = {}
        if language is not None:
            update["output"] = {"language": language}
        if transcription_model is not None:
            update["input"] = {"transcription": {"model": transcription_model}}
        run = _Run(self, timeout)
        return run.pieces(_chunks(source, chunk_ms), update, realtime=realtime)


_client_numbers = itertools.count(1)


def _duration_ms(pcm: bytes) -> float:
    return audio.duration_ms(pcm, rate=audio.SESSION_RATE, sample_width=2)


def _chunks(source: TranslationSource, chunk_ms: int) -> Iterator[bytes]:
    """The source as PCM16 24 kHz mono, ``chunk_ms`` at a time (an iterable's chunks as
    they come). A whole source is converted at once: nothing is sent if it cannot be."""
    whole = (str, os.PathLike, bytes, bytearray, memoryview, audio.AudioClip)
    if isinstance(source, whole) or hasattr(source, "read"):
        data = _pcm16(cast(audio.AudioSource, source))
        try:
            pieces = audio.chunks(data, ms=chunk_ms, rate=audio.SESSION_RATE, sample_width=2)
        except ValueError as exc:
            raise InvalidEventError(f"chunk_ms: {exc}") from exc
        return iter(list(pieces))
    return (data for data in map(_pcm16, source) if data)


def _pcm16(source: audio.AudioSource) -> bytes:
    try:
        return audio.encode_for_format(source, "pcm16")
    except ValueError as exc:
        raise InvalidEventError(f"audio: {exc}") from exc


class _Run:
    """One call of :meth:`~RealtimeTranslationClient.translate`: the events it listens to."""

    def __init__(self, client: RealtimeTranslationClient, timeout: float) -> None:
        self._client = client
        self._timeout = timeout
        self._events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._prefix = f"translate_{os.urandom(6).hex()}_"  # our events' ids
        self._numbers = itertools.count(1)
        self._acks = 0  # session.updated seen
        self._closed = False  # session.closed seen

    def pieces(
        self, chunks: Iterator[bytes], update: Mapping[str, Any], *, realtime: bool
    ) -> Generator[TranslationPiece, None, None]:
        client = self._client
        handler = self._events.put
        for name in _EVENTS:
            client.on(name, handler)
        try:
            if update:
                yield from self._send(TranslationSessionUpdateEvent, session={"audio": update})
                yield from self._until(lambda: self._acks > 0)
            start, sent_ms = time.monotonic(), 0.0
            for chunk in chunks:
                if realtime:  # each chunk when the audio before it has played
                    yield from self._until(lambda: False, start + sent_ms / 1000, fail=False)
                yield from self._send(TranslationInputAudioBufferAppendEvent, audio=_base64(chunk))
                sent_ms += _duration_ms(chunk)
                yield from self._until(self._events.empty)  # what has arrived, no waiting
            yield from self._send(TranslationSessionCloseEvent)
            yield from self._until(lambda: self._closed)
        finally:
            client.off(None, handler)
        client.close()

    def _send(self, cls: type[ClientEvent], **fields: Any) -> Iterator[TranslationPiece]:
        """Send one of our events; if the connection ended under it, raise what ended it
        (its ``client.closed`` is on the way), not the failed send."""
        try:
            self._client._send_typed(cls, f"{self._prefix}{next(self._numbers)}", **fields)
        except (NotConnectedError, TransportError):
            yield from self._until(lambda: False, time.monotonic() + self._timeout, fail=False)
            raise

    def _until(
        self, done: Callable[[], bool], deadline: float | None = None, *, fail: bool = True
    ) -> Iterator[TranslationPiece]:
        """Handle events until ``done()``, or until ``deadline`` (default: the timeout from
        now; with ``fail``, then raise)."""
        if deadline is None:
            deadline = time.monotonic() + self._timeout
        while not done():
            try:
                event = self._events.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                if not fail:
                    return
                raise RealtimeTimeoutError(
                    f"translate(): no answer from the server within {self._timeout} s"
                ) from None
            yield from self._handle(event)

    def _handle(self, event: Any) -> Iterator[TranslationPiece]:
        kind = event.type
        if kind == "session.input_transcript.delta":
            yield InputTranscriptDelta(event.delta, event.elapsed_ms)
        elif kind == "session.output_transcript.delta":
            yield OutputTranscriptDelta(event.delta, event.elapsed_ms)
        elif kind == "session.output_audio.delta":
            rate = event.sample_rate or audio.SESSION_RATE
            yield OutputAudioChunk(event.audio, event.elapsed_ms, rate)
        elif kind == "session.updated":
            self._acks += 1
        elif kind == "session.closed":
            self._closed = True
        elif kind == "error":
            if (event.error.event_id or "").startswith(self._prefix):
                raise error_for(cast(ErrorEvent, event))
        elif not self._closed:  # client.closed before session.closed: the stream is cut
            _raise_closed(event)


def _raise_closed(event: Any) -> None:
    if event.requested:
        raise ClientClosed("translate(): the client was closed")
    if isinstance(event.error, RealtimeError):
        raise event.error
    raise ConnectionClosed(
        "translate(): the connection ended before session.closed",
        code=event.code,
        reason=event.reason,
    )
