"""The reconnect policy: when to try again, how long to wait, what to carry across.

Pure values and arithmetic, no I/O: :class:`ReconnectPolicy` is what users configure, and
its :meth:`~ReconnectPolicy.delay` is exponential backoff with full jitter (the wait is
drawn uniformly between 0 and the capped exponential), which spreads the retries of many
clients that lost the same server at the same moment.
"""

from __future__ import annotations

import math
import random
from typing import Literal

import attrs
from attrs import field, frozen, validators

__all__ = ["GapAudio", "ReconnectPolicy", "default_session_seconds"]

LONGEST_RETRY_AFTER = 900.0
"""The longest ``Retry-After`` honoured, in seconds: a server asking for more is taken to
mean this much (a wait of hours would look like a hang)."""

GapAudio = Literal["drop", "queue"]
"""What ``input_audio_buffer.append`` does while disconnected: dropped (and reported in
``client.reconnected``), or queued up to ``gap_audio_seconds`` of audio."""


def _seconds(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise ValueError(f"{attribute.name} must be a finite number of seconds >= 0, not {value!r}")


@frozen
class ReconnectPolicy:
    """How a client survives dropped connections and session expiry.

    Pass it as ``RealtimeClient(reconnect=ReconnectPolicy(...))``; ``reconnect=True`` (the
    default) is ``ReconnectPolicy()``, ``reconnect=False`` turns reconnecting, replay,
    the send queue and rollover all off.
    """

    max_attempts: int | None = field(
        default=10,
        validator=validators.optional(validators.gt(0)),  # type: ignore[arg-type]
    )
    """Attempts per outage before giving up with ``client.closed`` (None: never give up)."""
    initial_delay: float = field(default=0.5, validator=_seconds)
    """The cap of the first wait, in seconds; it doubles per attempt."""
    max_delay: float = field(default=30.0, validator=_seconds)
    """The largest cap of a wait, in seconds (a ``Retry-After`` may ask for longer)."""
    replay: bool = field(default=True, validator=validators.instance_of(bool))
    """Bring the new session back to where the old one was: the session configuration you
    sent, then the conversation's items in order (see the README's table)."""
    retry_interrupted: bool = field(default=False, validator=validators.instance_of(bool))
    """Ask again for a response that the outage cut off (its ``send_text()`` goes on
    waiting) instead of failing it with :class:`~realtime_sync.ResponseInterruptedError`."""
    queue_max_events: int = field(default=1000, validator=validators.gt(0))
    """Events sent while disconnected that are kept to be sent after the replay; one more
    raises :class:`~realtime_sync.SendQueueFullError`."""
    queue_max_bytes: int = field(default=8 * 1024 * 1024, validator=validators.gt(0))
    """The same bound in bytes of encoded events."""
    gap_audio: GapAudio = field(default="drop", validator=validators.in_(("drop", "queue")))
    """Audio appended while disconnected: ``"drop"`` it (counted in ``client.reconnected``),
    or ``"queue"`` up to ``gap_audio_seconds`` of it, then drop the rest."""
    gap_audio_seconds: float = field(default=10.0, validator=_seconds)
    """With ``gap_audio="queue"``: how much audio the queue keeps, in seconds."""
    rollover: bool = field(default=True, validator=validators.instance_of(bool))
    """Replace a session before it expires: at a quiet moment (no response in progress, no
    audio appended for ``quiet_seconds``) within ``rollover_window`` seconds of its end, or
    when the server ends it with ``session_expired``."""
    expiring_notice: float = field(default=60.0, validator=_seconds)
    """Seconds before a session's end at which ``client.session_expiring`` is dispatched."""
    rollover_window: float = field(default=120.0, validator=_seconds)
    """Seconds before a session's end from which a quiet moment is used to roll it over
    (never before half of the session's life has passed)."""
    quiet_seconds: float = field(default=1.0, validator=_seconds)
    """How long no audio must have been appended for a moment to count as quiet."""
    session_seconds: float | None = field(
        default=None, validator=validators.optional([_seconds, validators.gt(0.0)])
    )
    """The session's lifetime when the server does not send ``expires_at`` (None: 60
    minutes on OpenAI, 30 on Azure)."""

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before attempt number ``attempt`` (1 for the first retry):
        uniform in ``[0, min(max_delay, initial_delay * 2**(attempt-1))]``, and never less
        than the server's ``retry_after`` (up to :data:`LONGEST_RETRY_AFTER`)."""
        cap = min(self.max_delay, self.initial_delay * 2.0 ** min(attempt - 1, 62))
        wait = (rng or random).uniform(0.0, cap)
        return max(wait, min(retry_after or 0.0, LONGEST_RETRY_AFTER))

    def gives_up_after(self, attempt: int) -> bool:
        """Whether ``attempt`` attempts are all this policy allows."""
        return self.max_attempts is not None and attempt >= self.max_attempts


def default_session_seconds(azure: bool) -> float:
    """How long a session lives when the server does not say: 30 minutes on Azure, 60 on
    OpenAI."""
    return 30 * 60.0 if azure else 60 * 60.0
