"""RealtimeClient: the public, blocking face of the library, and the wiring behind it.

A received frame travels: transport (``_websocket.py``, on the socket thread) → the
client's :class:`~realtime_sync._dispatch.Dispatcher` queue → on the dispatcher thread,
decoding (``_server_events.py``) → the connection's :class:`~realtime_sync._session.SessionCore`
→ the dispatcher's state reducers (recording, conversation state, turns, tools, playback)
→ user handlers → waiters.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Literal, TypeVar

import attrs

from ._conversation import ConversationState, UsageTotals, output_audio_format
from ._conversations import Conversations
from ._dialects import BETA_TO_GA
from ._dispatch import Dispatcher, HandlerRegistry
from ._endpoints import (
    Auth,
    Dialect,
    azure_target,
    check_transport_security,
    openai_headers,
    openai_target,
)
from ._errors import (
    ConfigurationError,
)
from ._handlers import Handlers
from ._interruption import Playback
from ._links import Links, make_transport
from ._objects import RateLimit
from ._reconnect import ReconnectPolicy
from ._recording import Recording
from ._resources import (
    ConversationResource,
    InputAudioBufferResource,
    OutputAudioBufferResource,
    ResponseResource,
    SessionResource,
    TranscriptionSessionResource,
)
from ._secrets import install_log_filter
from ._server_events import decode_event
from ._supervisor import Supervisor
from ._tool_runner import ToolRunner
from ._tools import ToolRegistry
from ._transport import Transport
from ._turns import Turns

__all__ = ["RealtimeClient"]

logger = logging.getLogger("realtime_sync")

H = TypeVar("H", bound=Callable[..., Any])
F = TypeVar("F", bound=Callable[..., Any])
_client_numbers = itertools.count(1)


class RealtimeClient(Links, Handlers, Conversations):
    """A blocking client for one Realtime session at a time.

    Typed senders are grouped as in the official SDK: ``client.session.update(...)``,
    ``client.conversation.item.create(...)``, ``client.response.create(...)``,
    ``client.input_audio_buffer.append(audio=pcm_bytes)``... each returning the event id.

    >>> client = RealtimeClient()                  # OPENAI_API_KEY from the environment
    >>> client.on("response.output_text.delta", lambda ev: print(ev.delta, end=""))
    >>> with client:                               # returns once session.created arrived
    ...     client.send({"type": "response.create"})
    ...     client.wait_for("response.done", timeout=30)

    Handlers run on one dispatcher thread in arrival order; the socket runs on another, so
    a slow handler never stalls pings. Every failure to connect is raised from
    :meth:`connect` as a typed :class:`~realtime_sync.RealtimeError`.
    """

    session: SessionResource
    """The current session (``client.session.id``, ``.current``) and ``update()``."""
    conversation: ConversationResource
    """``conversation.item.create/delete/retrieve/truncate``."""
    input_audio_buffer: InputAudioBufferResource
    """``append/commit/clear`` of the input audio buffer."""
    output_audio_buffer: OutputAudioBufferResource
    """``clear`` of the output audio buffer."""
    response: ResponseResource
    """``response.create/cancel``."""
    transcription_session: TranscriptionSessionResource
    """``transcription_session.update`` (beta)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        model: str | None = None,
        url: str | None = None,
        base_url: str | None = None,
        auth: Auth = "header",
        protocol: Dialect | None = None,
        normalize_events: bool = False,
        headers: Mapping[str, str] | None = None,
        organization: str | None = None,
        project: str | None = None,
        azure_endpoint: str | None = None,
        azure_deployment: str | None = None,
        azure_ad_token_provider: Callable[[], str] | None = None,
        api_version: str | None = None,
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
        conversation_audio: bool = True,
        conversation_max_items: int | None = None,
        auto_interrupt: bool = True,
        auto_tools: bool = True,
        allow_insecure: bool = False,
        reconnect: bool | ReconnectPolicy = True,
        backlog_warning: float | None = 1.0,
        intent: Literal["transcription"] | None = None,
        call_id: str | None = None,
    ) -> None:
        """Configure a client for OpenAI (or any OpenAI-compatible Realtime endpoint).

        Args:
            api_key: API key or ephemeral client secret; defaults to ``OPENAI_API_KEY``
                (``AZURE_OPENAI_API_KEY`` for Azure).
            model: Model name; defaults to a current GA model, or the seed's beta model.
            url: Full endpoint URL, used as given (``model`` is added when absent).
            base_url: API base such as ``https://api.openai.com/v1``; ``/realtime`` is added.
                Defaults to ``OPENAI_BASE_URL`` when set.
            auth: How the key travels: ``"header"`` (``Authorization: Bearer``, default),
                ``"subprotocol"`` (``openai-insecure-api-key.<key>``) or ``"query"``
                (``api-key=<key>``; the key then sits in the URL, so avoid it server-side).
            protocol: ``"ga"`` or ``"beta"`` (adds ``OpenAI-Beta: realtime=v1``); default GA,
                or beta for an Azure ``api_version`` deployment.
            normalize_events: Deliver beta events under their GA names
                (``response.text.delta`` as ``response.output_text.delta``...), so one program
                handles both dialects with the same names.
            headers: Extra request headers.
            organization: ``OpenAI-Organization`` header; defaults to ``OPENAI_ORG_ID``.
            project: ``OpenAI-Project`` header; defaults to ``OPENAI_PROJECT_ID``.
            azure_endpoint, azure_deployment, azure_ad_token_provider, api_version: Azure
                OpenAI instead of OpenAI; see :meth:`azure`, which reads their environment
                variables.
            ping_interval: Seconds between keepalive pings (None or 0: no pings).
            ping_timeout: Seconds to wait for a pong before the connection counts as dead.
            connect_timeout: Default for :meth:`connect`'s timeout, and the bound on each
                step of connecting (TCP connect, a proxy's CONNECT, the TLS handshake, the
                upgrade): a peer silent for longer fails the attempt and frees its thread.
            close_timeout: Default for :meth:`close`'s timeout.
            send_timeout: Seconds a frame may take to write before the peer counts as
                not reading: the send raises :class:`TransportError` (or, while
                reconnecting is on, is queued for the next connection) and the connection
                is cut (None: no bound).
            sslopt: websocket-client ``sslopt``; certificate verification stays on unless
                you turn it off there.
            ca_certs: Path of a CA bundle to trust (shortcut for ``sslopt["ca_certs"]``).
            http_proxy_host, http_proxy_port, http_proxy_auth, http_no_proxy, proxy_type:
                Proxy settings, passed to websocket-client.
            transport: Where connections come from instead of websocket-client (e.g.
                ``realtime_sync.testing.InProcessTransport``); the ping, TLS and proxy
                settings then do not apply.
            conversation_audio: Keep the model's audio in ``client.conversation.items``
                (False keeps transcripts only, for long voice sessions).
            conversation_max_items: Keep only the last N items there (None: all).
            auto_interrupt: With server VAD, when the user starts speaking over the model's
                audio, cut it at what was played (see :meth:`interrupt`); only for audio
                whose playback the app reports with :meth:`report_playback`.
            auto_tools: Run registered tools when the model calls them and answer it
                (False: the app answers ``function_call`` items itself).
            allow_insecure: Allow a plain ``ws://`` (``http://``) URL to a host off this
                machine, which shows the key to the network; refused otherwise.
            backlog_warning: Dispatch ``client.backlog`` when received events wait longer
                than this many seconds to be dispatched (None: never).
            reconnect: Survive lost connections and session expiry (the default): a
                :class:`ReconnectPolicy`, True for the default one, False to end with the
                first loss. See the README's "Long-running sessions".
            intent: ``"transcription"`` opens a transcription session (``intent=transcription``
                in the URL; the model only when ``model`` is given): speech in, transcripts
                out, no responses. GA only. See :meth:`transcribe`.
            call_id: Join a call already running (SIP or WebRTC, ``rtc_...``, e.g. from a
                ``realtime.call.incoming`` webhook, accepted with ``RealtimeAPI().calls``)
                instead of starting a session: ``?call_id=`` replaces ``?model=``, so
                ``model`` may not be given. GA only. After a drop the client joins again
                without replaying the conversation, which the call's session keeps (even
                with a ``ReconnectPolicy(replay=True)``).
        """
        azure = any(
            value is not None
            for value in (azure_endpoint, azure_deployment, azure_ad_token_provider, api_version)
        )
        if azure:
            if api_key is None and azure_ad_token_provider is None:
                api_key = os.environ.get("AZURE_OPENAI_API_KEY")
            target = azure_target(
                endpoint=azure_endpoint,
                deployment=azure_deployment or model,
                api_key=api_key,
                token_provider=azure_ad_token_provider,
                api_version=api_version,
                dialect=protocol,
                headers=dict(headers or {}),
                intent=intent,
                call_id=call_id,
            )
        else:
            target = openai_target(
                api_key=api_key if api_key is not None else os.environ.get("OPENAI_API_KEY"),
                model=model,
                url=url,
                base_url=base_url or os.environ.get("OPENAI_BASE_URL") or None,
                auth=auth,
                dialect=protocol or "ga",
                headers=openai_headers(headers, organization, project),
                intent=intent,
                call_id=call_id,
            )
        check_transport_security(target, allow_insecure=allow_insecure)
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
        install_log_filter()
        self._target = target
        self._connect_timeout = connect_timeout
        self._close_timeout = close_timeout
        self._registry = HandlerRegistry(target.dialect)
        self._init_links()
        number = next(_client_numbers)
        self._name = f"realtime_sync-{number}"
        self.tools = ToolRegistry()
        """The Python functions the model may call (also ``@client.tool``, ``add_tool()``)."""
        self._turns = Turns(
            self,
            lambda: output_audio_format(self._session),
            # Late-bound: the runner, made next, answers through these turns.
            continues=lambda response: self._runner.will_answer(response),  # noqa: PLW0108
            deferring=lambda: self._supervisor.gap.holding,
            queued=lambda event_id: self._supervisor.gap.contains(event_id),  # noqa: PLW0108
            known=lambda event: self._state.get(_item_id(event)) is not None,
        )
        self._runner = ToolRunner(self, self.tools, self._turns, automatic=auto_tools)
        self._state = ConversationState(
            dialect=target.dialect,
            keep_audio=conversation_audio,
            max_items=conversation_max_items,
            # Late-bound: the dispatcher, made next, takes this state as a reducer.
            emit=lambda event: self._dispatcher.emit(event),  # noqa: PLW0108
            listened=lambda event_type: self._dispatcher.listened(event_type),  # noqa: PLW0108
        )
        self._recording: Recording | None = None
        self._playback = Playback(self, self._state, self._turns, automatic=auto_interrupt)
        self._supervisor = Supervisor(
            _reconnect_policy(reconnect, joins_call=call_id is not None),
            host=self,
            state=self._state,
            turns=self._turns,
            dialect=target.dialect,
            azure=azure,
            connect_timeout=connect_timeout,
            # Late-bound: the dispatcher, made next, takes the supervisor as a reducer.
            submit=lambda core, item: self._dispatcher.submit(core, item),  # noqa: PLW0108
            emit=lambda event: self._dispatcher.emit(event),  # noqa: PLW0108
            source=lambda: self._dispatcher.source,
            name=self._name,
        )
        self._dispatcher = Dispatcher(
            self._registry,
            name=self._name,
            reducers=[
                self._supervisor.receive,
                self._record_received,
                self._state.receive,
                self._turns.receive,
                self._runner.receive,
                self._playback.receive,
            ],
            decode=(
                _normalized_decode
                if normalize_events and target.dialect == "beta"
                else decode_event
            ),
            on_failure=self._dispatcher_failed,
            backlog_warning=backlog_warning,
        )
        self._event_ids = itertools.count(1)
        self._event_id_prefix = f"evt_{os.urandom(6).hex()}_"
        self.session = SessionResource(self)
        self.conversation = ConversationResource(self)
        self.input_audio_buffer = InputAudioBufferResource(self)
        self.output_audio_buffer = OutputAudioBufferResource(self)
        self.response = ResponseResource(self)
        self.transcription_session = TranscriptionSessionResource(self)

    @classmethod
    def azure(
        cls,
        *,
        endpoint: str | None = None,
        deployment: str | None = None,
        api_key: str | None = None,
        azure_ad_token_provider: Callable[[], str] | None = None,
        api_version: str | None = None,
        **options: Any,
    ) -> RealtimeClient:
        """A client for Azure OpenAI's Realtime endpoint.

        Args:
            endpoint: ``https://<resource>.openai.azure.com``; defaults to
                ``AZURE_OPENAI_ENDPOINT``.
            deployment: The deployment name (sent as ``model`` or ``deployment``).
            api_key: The resource key (``api-key`` header); defaults to
                ``AZURE_OPENAI_API_KEY`` unless a token provider is given.
            azure_ad_token_provider: A callable returning a fresh Entra ID token, called on
                every connect (sent as ``Authorization: Bearer``).
            api_version: When given (or, when None, set as ``OPENAI_API_VERSION``), use
                the legacy ``/openai/realtime?api-version=...&deployment=...`` URL, which
                speaks the beta dialect; otherwise the GA ``/openai/v1/realtime`` URL.
                ``""`` asks for the GA URL whatever the environment says (the variable is
                often set for other Azure clients).
            options: Any other :class:`RealtimeClient` argument (``protocol``,
                ``ping_interval``, ``http_proxy_host``, ``transport``...).
        """
        return cls(
            api_key,
            # "" rather than None: still an Azure client, refused for its missing endpoint.
            azure_endpoint=endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT") or "",
            azure_deployment=deployment,
            azure_ad_token_provider=azure_ad_token_provider,
            api_version=(
                os.environ.get("OPENAI_API_VERSION") if api_version is None else api_version
            )
            or None,
            **options,
        )

    # --- introspection ----------------------------------------------------------------------

    @property
    def dialect(self) -> Dialect:
        """``"ga"`` or ``"beta"``: the protocol dialect this client speaks."""
        return self._target.dialect

    @property
    def usage(self) -> UsageTotals:
        """Token totals of the client's sessions, summed over every ``response.done``."""
        return self._state.usage

    @property
    def rate_limits(self) -> tuple[RateLimit, ...]:
        """The rate limits from the latest ``rate_limits.updated``."""
        return self._state.rate_limits

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<RealtimeClient {self.dialect} {self.url} {state}>"

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> RealtimeClient:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _reconnect_policy(
    reconnect: bool | ReconnectPolicy, *, joins_call: bool
) -> ReconnectPolicy | None:
    # A joined call keeps its session on the service side: rejoining must not send the
    # conversation again (the service refuses items that already exist), whatever the policy.
    if isinstance(reconnect, ReconnectPolicy):
        return attrs.evolve(reconnect, replay=False) if joins_call else reconnect
    if reconnect is True:
        return ReconnectPolicy(replay=not joins_call)
    if reconnect is False:
        return None
    raise ConfigurationError(
        f"reconnect must be True, False or a ReconnectPolicy, not {type(reconnect).__name__}"
    )


def _item_id(event: Mapping[str, Any]) -> str:
    item = event.get("item")
    return str(item.get("id") or "") if isinstance(item, Mapping) else ""


def _normalized_decode(data: bytes | str) -> Any:
    """Decode a beta frame, renaming events that GA names differently to their GA names."""
    return decode_event(data, rename=BETA_TO_GA)
