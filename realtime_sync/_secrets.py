"""Keep API keys and tokens out of log lines, exception messages and printed URLs.

Every secret a client uses is registered here. A filter on our own logger and on
websocket-client's ``websocket`` logger rewrites any record that contains one, so even a
user who turns on ``websocket.enableTrace(True)`` (which dumps request headers) or a library
log line that quotes our subprotocol list never prints a key.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

MASK = "***"
"""What a masked secret shows as."""
_lock = threading.Lock()
# Registered secrets, longest first so that a key containing another is masked whole.
_secrets: tuple[str, ...] = ()

# Query parameters that carry credentials in Realtime URLs.
SECRET_QUERY_PARAMS = frozenset({"api-key", "api_key", "key", "token", "access_token"})


def register_secret(secret: str | None) -> None:
    """Remember ``secret`` so that every later log record and message masks it."""
    global _secrets
    # Very short strings would mask ordinary words; real keys and tokens are long.
    if not secret or len(secret) < 8:
        return
    # In a URL the secret travels percent-encoded: mask those spellings too.
    spellings = {secret, quote(secret, safe=""), quote_plus(secret)}
    with _lock:
        if not spellings.issubset(_secrets):
            _secrets = tuple(sorted(set(_secrets) | spellings, key=len, reverse=True))


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``***``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_deep(value: Any) -> Any:
    """``value`` (parsed JSON) with every registered secret masked in its strings."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(key)): redact_deep(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_deep(item) for item in value]
    return value


def redact_url(url: str) -> str:
    """Mask credential query parameters in ``url`` (and any registered secret)."""
    parts = urlsplit(url)
    if parts.query:
        query = [
            (name, MASK if name.lower() in SECRET_QUERY_PARAMS else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ]
        url = urlunsplit(parts._replace(query=urlencode(query, safe="*")))
    return redact(url)


class RedactingFilter(logging.Filter):
    """A logging filter that masks registered secrets in the message and traceback.

    It also demotes websocket-client's ``"... - goodbye"`` ERROR lines, logged on every
    disconnect, to DEBUG when they come from one of our threads: the client reports those
    conditions itself, as typed exceptions and events, so they are not errors of the app.
    The logger's level was checked against ERROR before this filter ran, so a demoted
    record is let through only where DEBUG is enabled.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            message = record.getMessage()
            cleaned = redact(message)
            if cleaned is not message and cleaned != message:
                record.msg, record.args = cleaned, None
            if record.exc_info and not record.exc_text:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        if (
            record.levelno == logging.ERROR
            and record.name == "websocket"
            and record.threadName is not None
            and record.threadName.startswith("realtime_sync")
            and record.getMessage().endswith(" - goodbye")
        ):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


_filter = RedactingFilter()


def install_log_filter() -> None:
    """Attach the redacting filter to our logger and websocket-client's (once)."""
    for name in ("realtime_sync", "websocket"):
        logger = logging.getLogger(name)
        if _filter not in logger.filters:
            logger.addFilter(_filter)
