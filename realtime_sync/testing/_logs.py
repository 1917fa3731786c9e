"""The local server's loggers, and the filters that keep credentials out of them."""

from __future__ import annotations

import logging

from .._secrets import RedactingFilter, redact_url
from ._admission import mask_header

__all__ = ["server_log", "wire_log"]

server_log = logging.getLogger("realtime_sync.testing")
# websockets logs every request header at DEBUG level; give it its own logger so the
# credential filters below see all of its records.
wire_log = logging.getLogger("realtime_sync.testing.websockets")


class _MaskHandshakeCredentials(logging.Filter):
    """Mask keys in websockets' DEBUG handshake logs by where they travel.

    Why not only the registered secrets: websockets logs the request line and each header
    as it parses the request, before any hook of ours runs, so a key the server never saw
    (a client's wrong key, any key when ``api_key`` is ``None``) is not registered yet when
    its line is logged. The places a key can travel are known (the ``Authorization`` and
    ``api-key`` headers, the key subprotocol, the ``api-key`` query parameter): mask those.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args:
            if len(args) == 2 and all(isinstance(arg, str) for arg in args):
                name, value = args
                record.args = (name, mask_header(str(name), str(value)))
            else:
                # The request target is the only argument that starts with "/".
                record.args = tuple(
                    redact_url(arg) if isinstance(arg, str) and arg.startswith("/") else arg
                    for arg in args
                )
        return True


wire_log.addFilter(_MaskHandshakeCredentials())
# Registered secrets (the server's key, every key a client presented) anywhere else.
for _logger in (server_log, wire_log):
    _logger.addFilter(RedactingFilter())
