"""One POST over the standard library's ``http.client``: no new dependency. JSON both
ways (:meth:`HttpEndpoint.post`), or any body and reply (:meth:`HttpEndpoint.send`: an SDP
offer, a ``multipart/form-data`` one, the SDP answer and its headers).

Refusals become the same :class:`~realtime_sync.APIError` subclasses a refused WebSocket
upgrade does: the response is reported as a :class:`TransportEnded` and mapped by
:func:`realtime_sync._failures.failure`, the one place that maps statuses to errors.
Redirects are never followed (the credential would go along), nothing is retried, and the
key never reaches a log line, an exception or a ``repr``. The timeout bounds the whole
request, from connecting (each of the host's addresses gets only the time left; looking
the name up is not bounded) to the reply's last byte: a watchdog shuts the socket at the
deadline, so a server that answers a byte at a time cannot hold it longer. Through a
proxy the request goes in an HTTP CONNECT tunnel, as the WebSocket client's does.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import ipaddress
import json
import logging
import math
import secrets
import socket
import ssl
import threading
import time
import unicodedata
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from attrs import field, frozen

from ._errors import (
    APIError,
    ConfigurationError,
    RealtimeError,
    RealtimeTimeoutError,
    TransportError,
)
from ._failures import failure
from ._reconnect import LONGEST_RETRY_AFTER
from ._secrets import redact, redact_url, register_secret
from ._timeouts import check_seconds
from ._transport import TransportEnded

__all__ = [
    "HttpEndpoint",
    "HttpProxy",
    "HttpReply",
    "check_credential",
    "multipart",
    "path_segment",
]

logger = logging.getLogger("realtime_sync")

_MAX_BODY = 16 * 2**20  # a reply bigger than this is not an answer of this API


def check_credential(value: str, what: str) -> str:
    """``value`` (a key or token) if it can go into a header as it is; else
    ConfigurationError, which never shows the value."""
    if value != value.strip() or any(unicodedata.category(c) == "Cc" for c in value):
        raise ConfigurationError(
            f"the {what} has surrounding whitespace or control characters (a line break "
            "read from a file or an environment variable?): strip it before passing it"
        )
    return value


def path_segment(value: str, name: str) -> str:
    """``value`` quoted for one URL path segment; an empty one refused (it would change
    which endpoint is called)."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{name} must be a non-empty string; got {value!r}")
    return quote(value, safe="")


def multipart(parts: Sequence[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body of ``(name, content type, data)`` parts, and its
    content type. The boundary is random and checked against every part, so no part can
    end the body early whatever it holds."""
    boundary = secrets.token_hex(16)
    while any(boundary.encode() in data for _, _, data in parts):
        boundary = secrets.token_hex(16)
    body = b"".join(
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{name}"\r\n'
        f"Content-Type: {kind}\r\n\r\n".encode()
        + data
        + b"\r\n"
        for name, kind, data in parts
    )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@frozen
class HttpProxy:
    """An HTTP proxy that opens CONNECT tunnels."""

    host: str
    """The proxy's host."""
    port: int
    """The proxy's port."""
    auth: tuple[str, str] | None = field(default=None, repr=False)
    """User name and password for ``Proxy-Authorization: Basic``, or None."""

    @classmethod
    def given(
        cls, host: str | None, port: int | str | None, auth: tuple[str, str] | None
    ) -> HttpProxy | None:
        """The proxy the ``http_proxy_host``, ``http_proxy_port`` and ``http_proxy_auth``
        arguments name, checked (ConfigurationError, never showing the password); None
        when no host is given."""
        if host is None:
            if port is not None or auth is not None:
                raise ConfigurationError("http_proxy_port and http_proxy_auth need http_proxy_host")
            return None
        if (
            not isinstance(host, str)
            or not host
            or any(c.isspace() or not c.isprintable() for c in host)
        ):
            raise ConfigurationError(f"http_proxy_host must be a host name; got {host!r}")
        try:  # not a float or a bool: int() would quietly make 1.5 or True port 1
            number = int(port) if isinstance(port, (int, str)) and not isinstance(port, bool) else 0
        except ValueError:
            number = 0
        if not 0 < number < 65536:
            raise ConfigurationError(f"http_proxy_port must be a port number; got {port!r}")
        if auth is not None:
            # A "user:password" string would be taken apart letter by letter. Not shown.
            if not (
                isinstance(auth, (tuple, list))
                and len(auth) == 2
                and all(isinstance(part, str) for part in auth)
            ):
                raise ConfigurationError("http_proxy_auth must be a (user name, password) pair")
            register_secret(auth[1])
            auth = (auth[0], auth[1])
        return cls(host, number, auth)

    @classmethod
    def from_url(cls, url: str, origin: str) -> HttpProxy:
        """The proxy an ``http://[user:password@]host[:port]`` URL names (from ``origin``,
        e.g. an environment variable, named in the error; the URL itself is not shown)."""
        try:
            parts = urlsplit(url if "://" in url else f"http://{url}")
            port = parts.port or 80
        except ValueError:
            parts, port = None, 0
        if parts is None or parts.scheme != "http" or not parts.hostname:
            raise ConfigurationError(
                f"{origin} is not an http://host:port proxy URL (only HTTP CONNECT proxies "
                "are supported)"
            )
        auth = None
        if parts.username is not None:
            auth = (unquote(parts.username), unquote(parts.password or ""))
            register_secret(auth[1])
        return cls(parts.hostname, port, auth)

    def tunnel_headers(self) -> dict[str, str]:
        """The CONNECT request's headers: the credentials, if any."""
        if self.auth is None:
            return {}
        token = base64.b64encode(":".join(self.auth).encode()).decode()
        register_secret(token)
        return {"Proxy-Authorization": f"Basic {token}"}


def choose_proxy(
    url: str, proxy: HttpProxy | None, no_proxy: Sequence[str] | None
) -> HttpProxy | None:
    """The proxy to reach ``url`` through: none for a host ``no_proxy`` names (default:
    the ``no_proxy`` variable), else ``proxy``, else the ``https_proxy`` or ``http_proxy``
    variable for its scheme. websocket-client chooses the same way for the WebSocket, with
    one difference: it reads ``http_no_proxy`` only beside an explicit proxy host, and an
    empty list there means the variable, where here it means no exemption."""
    parts = urlsplit(url)
    environment = urllib.request.getproxies_environment()
    exempt = no_proxy if no_proxy is not None else environment.get("no", "").split(",")
    if _exempt(parts.hostname or "", exempt):
        return None
    if proxy is not None:
        return proxy
    variable = environment.get(parts.scheme)
    return (
        None if not variable else HttpProxy.from_url(variable, f"the {parts.scheme}_proxy variable")
    )


def _exempt(host: str, entries: Sequence[str]) -> bool:
    """Whether ``no_proxy`` entries name ``host``: ``*``, the host, a domain it is in
    (``example.com`` or ``.example.com``), or for an IP address a network holding it
    (``10.0.0.0/8``, as the WebSocket client reads it); a ``:port`` on an entry is ignored."""
    host = host.lower().rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in entries:
        name = entry.strip().lower().lstrip(".")
        if name == "*":
            return True
        if name.count(":") == 1:  # host:port (an IPv6 address has more colons)
            name = name.split(":")[0]
        if name and (host == name or host.endswith("." + name)):
            return True
        if address is not None and "/" in name and _in_network(address, name):
            return True
    return False


def _in_network(address: ipaddress.IPv4Address | ipaddress.IPv6Address, entry: str) -> bool:
    """Whether ``address`` is in the network ``entry`` names, e.g. ``10.0.0.0/8``."""
    try:
        return address in ipaddress.ip_network(entry, strict=False)
    except ValueError:  # not a network: an entry for some other tool
        return False


@frozen
class HttpReply:
    """A successful reply, as it came."""

    status: int
    """The HTTP status (2xx)."""
    headers: Mapping[str, str]
    """Its headers, with lower-case names."""
    body: bytes = field(repr=False)
    """Its body."""
    display_url: str
    """The URL asked, as it may be shown (credentials masked)."""


@frozen
class HttpEndpoint:
    """An HTTP API base and its credential. Holds a secret: never log it whole."""

    base_url: str
    """``https://api.openai.com/v1`` or another base, without credentials."""
    auth_header: str
    """``Authorization`` (bearer) or ``api-key`` (Azure)."""
    api_key: str | None = field(repr=False)
    """Static key; None when ``token_provider`` is used."""
    token_provider: Callable[[], str] | None = field(repr=False)
    """Callable returning a fresh bearer token (Azure Entra ID), called for every request."""
    headers: Mapping[str, str] = field(repr=False)
    """Extra request headers (organisation, project, custom)."""
    timeout: float
    """Seconds for a whole request: connecting, sending, and reading the reply."""
    ssl_context: ssl.SSLContext | None = field(repr=False, eq=False)
    """TLS context for ``https://`` (None: the system's defaults, verification on)."""
    proxy: HttpProxy | None = None
    """The proxy to tunnel through, unless ``no_proxy`` exempts the host (see
    :func:`choose_proxy`)."""
    no_proxy: Sequence[str] | None = None
    """Hosts reached directly; None: the ``no_proxy`` variable's."""

    def post(self, path: str, body: Mapping[str, Any] | None, *, timeout: float | None) -> Any:
        """POST ``body`` as JSON to ``base_url + path``; the parsed JSON reply (None when
        empty), within ``timeout`` seconds in all (default: the endpoint's). Raises the
        matching APIError, RealtimeTimeoutError, TransportError or ConfigurationError."""
        payload = b"" if body is None else json.dumps(body).encode()
        reply = self.send(path, payload, content_type="application/json", timeout=timeout)
        return _parse(reply)

    def send(
        self,
        path: str,
        payload: bytes,
        *,
        content_type: str,
        accept: str = "application/json",
        timeout: float | None,
    ) -> HttpReply:
        """POST ``payload`` (of ``content_type``) to ``base_url + path``: the successful
        reply as it came, whatever its type; refusals raise as :meth:`post` says."""
        seconds = (
            self.timeout if timeout is None else check_seconds(timeout, "timeout", finite=True)
        )
        url = self.base_url.rstrip("/") + path
        display = redact_url(url)
        parts = urlsplit(url)
        headers = {
            **self.headers,
            "Content-Type": content_type,
            "Accept": accept,
            **self._credential(),
        }
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        deadline = _Deadline(seconds)
        proxy = choose_proxy(url, self.proxy, self.no_proxy)
        address = parts.netloc if proxy is None else f"{proxy.host}:{proxy.port}"
        connection: _Watched
        if parts.scheme == "https":
            context = self.ssl_context or ssl.create_default_context()
            connection = _WatchedHTTPS(address, timeout=seconds, context=context)
        else:
            connection = _WatchedHTTP(address, timeout=seconds)
        if proxy is not None:
            connection.set_tunnel(parts.netloc, headers=proxy.tunnel_headers())
        connection.watch(deadline)
        logger.debug("POST %s", display)
        # Errors are raised after the except blocks: one raised inside would keep the
        # original (whose text may quote a header) as its __context__.
        error: RealtimeError | None = None
        deadline.start()
        try:
            try:
                connection.request("POST", target, body=payload, headers=headers)
                response = connection.getresponse()
                reply = response.read(_MAX_BODY + 1)
            finally:
                deadline.stop()
                connection.close()
        except (OSError, http.client.HTTPException) as exc:
            if deadline.expired or isinstance(exc, TimeoutError):
                error = RealtimeTimeoutError(f"POST {display}: no answer within {seconds} s")
            else:
                error = TransportError(
                    f"POST {display} failed: {redact(str(exc)) or type(exc).__name__}"
                )
            error.__cause__ = _scrubbed(exc)
        # After OSError, as a failed certificate check is a ValueError too. Not shown: the
        # text of http.client's refusal of a header quotes the header, the key included.
        except (ValueError, TypeError) as exc:
            error = TransportError(
                f"POST {display}: the request could not be sent ({type(exc).__name__}: a "
                "header or the URL holds a character HTTP does not allow)"
            )
        if error is None and deadline.expired:  # a reply cut short at the deadline
            error = RealtimeTimeoutError(f"POST {display}: no answer within {seconds} s")
        if error is not None:
            raise error
        if 200 <= response.status < 300:
            if len(reply) > _MAX_BODY:  # read only so far: what came is cut short
                raise TransportError(f"POST {display}: the reply is larger than 16 MiB")
            return HttpReply(
                status=response.status,
                headers={name.lower(): value for name, value in response.getheaders()},
                body=reply,
                display_url=display,
            )
        ended = TransportEnded(
            kind="redirected" if 300 <= response.status < 400 else "refused",
            opened=False,
            status=response.status,
            status_text=response.reason,
            headers={name.lower(): value for name, value in response.getheaders()},
            body=reply[:_MAX_BODY],
            location=response.getheader("location"),
        )
        refusal = failure(ended, session_started=False, final_error=None, display_url=display)
        if isinstance(refusal, APIError) and refusal.retry_after is not None:
            # As the reconnecting client waits: a date years away is not a wait anyone means.
            refusal.retry_after = min(refusal.retry_after, LONGEST_RETRY_AFTER)
        raise refusal

    def _credential(self) -> dict[str, str]:
        if self.token_provider is not None:
            token = self.token_provider()
            if not isinstance(token, str) or not token:
                raise ConfigurationError("the token provider returned no token")
            register_secret(token)
            check_credential(token, "token the token provider returned")
            return {"Authorization": f"Bearer {token}"}
        if self.auth_header == "api-key":
            return {"api-key": self.api_key or ""}
        return {"Authorization": f"Bearer {self.api_key}"}


def _parse(reply: HttpReply) -> Any:
    if not reply.body.strip():
        return None
    try:
        return json.loads(reply.body)
    except ValueError:
        raise TransportError(f"POST {reply.display_url}: the reply is not JSON") from None


def _scrubbed(exc: BaseException) -> RealtimeError:
    """The cause to chain: its text with secrets masked (a proxy may echo a header)."""
    return TransportError(redact(f"{type(exc).__name__}: {exc}"))


class _Deadline:
    """Shuts a request's socket down when its time is up: whatever it is blocked in then
    (the TLS handshake, a send, a read) fails at once, and ``expired`` tells why."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._seconds = seconds
        self._ends = math.inf  # set by start()
        self._lock = threading.Lock()
        self._done = False
        self._socket: socket.socket | None = None
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.name = "realtime_sync-http-deadline"

    def start(self) -> None:
        self._ends = time.monotonic() + self._seconds
        self._timer.start()

    def remaining(self) -> float:
        """Seconds until the deadline (none left: 0 or less)."""
        return self._ends - time.monotonic()

    def watch(self, sock: socket.socket) -> None:
        """Watch the connected socket (a duplicate: TLS takes the original over)."""
        with self._lock:
            if self._done:
                return
            self._socket = sock.dup()
            expired = self.expired
        if expired:
            self._shutdown()

    def stop(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._done = True
            sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
        self._shutdown()

    def _shutdown(self) -> None:
        with self._lock:
            if self._socket is not None:
                with contextlib.suppress(OSError):  # already closed by the peer
                    self._socket.shutdown(socket.SHUT_RDWR)


class _Watched(http.client.HTTPConnection):
    """A connection whose socket a :class:`_Deadline` watches from the moment it connects,
    a proxy's CONNECT exchange included."""

    def watch(self, deadline: _Deadline) -> None:
        # http.client opens every socket (the proxy's too) through this attribute. Not
        # socket.create_connection: it gives each of a host's addresses the whole timeout,
        # so a host with several unreachable ones (IPv6 broken here, say) took a multiple.
        def connect(
            address: tuple[str, int], timeout: float, source_address: Any = None
        ) -> socket.socket:
            host, port = address
            failure: OSError = OSError(f"no address found for {host}")
            for family, kind, proto, _, target in socket.getaddrinfo(
                host, port, 0, socket.SOCK_STREAM
            ):
                left = min(timeout, deadline.remaining())
                if left <= 0:
                    failure = TimeoutError(f"no address of {host} answered in time")
                    break
                sock = socket.socket(family, kind, proto)
                try:
                    sock.settimeout(left)
                    if source_address:
                        sock.bind(source_address)
                    sock.connect(target)
                except BaseException as exc:
                    sock.close()
                    if not isinstance(exc, OSError):
                        raise
                    failure = exc
                    continue
                sock.settimeout(timeout)
                deadline.watch(sock)
                return sock
            raise failure

        self.__dict__["_create_connection"] = connect


class _WatchedHTTP(_Watched):
    pass


class _WatchedHTTPS(http.client.HTTPSConnection, _Watched):
    pass
