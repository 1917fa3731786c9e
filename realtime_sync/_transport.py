"""The transport seam: what the client needs from a connection, and how one ends.

The client talks to a :class:`Transport`, which opens :class:`TransportConnection` objects;
the websocket-client shell (``_websocket.py``) is the default implementation, and
``realtime_sync.testing`` offers an in-process one. How a connection ended is reported as
a neutral :class:`TransportEnded` value, so that mapping ends to errors (``_failures.py``)
never sees a WebSocket library's exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal, Protocol

from attrs import field, frozen

from ._endpoints import Handshake
from ._local_events import InvalidFrameEvent

__all__ = [
    "EndKind",
    "EndSink",
    "FrameSink",
    "Transport",
    "TransportConnection",
    "TransportEnded",
    "binary_frame",
]

EndKind = Literal["closed", "dropped", "timeout", "refused", "redirected", "unreachable"]
"""How a connection ended:

- ``closed``: a close frame arrived (``code``/``reason`` set), or we closed it ourselves;
- ``dropped``: an open connection was lost without a close frame;
- ``timeout``: an open connection went silent (no pong within the ping timeout);
- ``refused``: the upgrade got an HTTP status other than 101 (``status``, ``headers``, ``body``);
- ``redirected``: the upgrade got a 3xx, which is never followed (``status``, ``location``);
- ``unreachable``: no upgrade happened at all (refused, DNS, TLS, a broken reply).
"""


@frozen
class TransportEnded:
    """A transport's report that a connection is over, queued behind its last frame."""

    kind: EndKind
    """What ended it (see :data:`EndKind`)."""
    opened: bool
    """Whether the WebSocket upgrade had succeeded."""
    code: int | None = None
    """Close code from the peer's close frame, if there was one."""
    reason: str | None = None
    """Close reason from the peer's close frame, if there was one."""
    status: int | None = None
    """HTTP status of a refused or redirected upgrade."""
    status_text: str = ""
    """HTTP reason phrase of a refused or redirected upgrade."""
    headers: Mapping[str, str] = field(factory=dict, repr=False)
    """Response headers of a refused or redirected upgrade, names in lower case."""
    body: bytes | None = field(default=None, repr=False)
    """Response body of a refused upgrade."""
    location: str | None = field(default=None, repr=False)
    """Where a redirect pointed (may carry secrets: redact before showing)."""
    detail: str = field(default="", repr=False)
    """The underlying error's text (may carry secrets: redact before showing)."""
    cause: BaseException | None = field(default=None, repr=False, eq=False)
    """The underlying exception, for chaining."""


FrameSink = Callable[[bytes | str | InvalidFrameEvent | list[bytes | InvalidFrameEvent]], None]
"""Where a connection hands each text frame it receives (a binary one as
:func:`binary_frame` makes it), or a list of them read in one go: a burst handed over at
once costs the receiving thread one wake-up instead of one per frame."""


def binary_frame(data: bytes) -> InvalidFrameEvent:
    """What a transport hands on for a binary frame: Realtime events are JSON text."""
    return InvalidFrameEvent(data=data, reason="a binary frame: Realtime events are JSON text")


EndSink = Callable[[TransportEnded], None]
"""Where a connection reports its end, once, after its last frame."""


class TransportConnection(Protocol):
    """One connection. ``start()`` begins the upgrade; frames go to the ``on_frame`` sink
    given at opening, and ``on_end`` is called exactly once, after the last frame."""

    def start(self) -> None:
        """Begin connecting (in the background); return at once."""

    @property
    def opened(self) -> bool:
        """True once the upgrade succeeded (and until the end, still True)."""

    @property
    def finished(self) -> bool:
        """True once the connection is over and ``on_end`` has been called."""

    def send(self, data: bytes) -> None:
        """Send one text frame, thread-safely, or raise ``NotConnectedError`` /
        ``TransportError``; never drop it silently."""

    def close(self, timeout: float) -> bool:
        """Close politely, then firmly; True when the connection was over within ``timeout``."""

    def abort(self) -> None:
        """Cut the connection now, without a close frame."""


class Transport(Protocol):
    """Makes connections for a client."""

    def open(
        self,
        handshake: Handshake,
        *,
        on_frame: FrameSink,
        on_end: EndSink,
        name: str,
    ) -> TransportConnection:
        """A new, not yet started connection for ``handshake``; ``name`` labels its threads."""
