"""WebRTC call creation on the local server: reading the offer, writing the answer.

``POST /realtime/calls`` carries the caller's SDP offer, bare (``application/sdp``) or as
the ``sdp`` part of a ``multipart/form-data`` body beside a ``session`` part (JSON). No
media flows here: the answer is well-formed SDP that mirrors the offer's media sections
(kind, ``mid``, opus payload type, direction) with ICE and DTLS attributes derived from
the call's id, so the same call always gets the same answer.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import json
import re

import attrs

from ._catalogue import JsonObject

__all__ = ["Offer", "OfferError", "answer_sdp", "read_offer"]

_PARTS = frozenset({"sdp", "session"})
_LINE = re.compile(r"[a-z]=[^\r\n]*")  # <type>=<value>, RFC 8866 section 5
_OPUS = re.compile(r"a=rtpmap:(\d+) opus/48000(?:/2)?", re.IGNORECASE)
_ANSWER_DIRECTION = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}
_DEFAULT_OPUS = "111"


@attrs.frozen
class Offer:
    """What a create request carries."""

    sdp: str
    """The SDP offer."""
    session: JsonObject | None
    """The ``session`` part, or None when the request had none."""


class OfferError(Exception):
    """The request's body is not an offer: answered 400 with this error."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


def read_offer(content_type: str, body: bytes) -> Offer:
    """The offer in a create request's body, or :class:`OfferError`."""
    kind = content_type.partition(";")[0].strip().lower()
    if kind == "application/sdp":
        return Offer(_sdp(body), None)
    if kind != "multipart/form-data":
        raise OfferError(
            "invalid_content_type",
            "The body must be an SDP offer (application/sdp) or multipart/form-data with "
            f"an 'sdp' part; got {kind or 'no content type'!r}.",
        )
    # The email parser reads MIME multipart; its defects list catches a missing or wrong
    # boundary and a body cut short, which it would otherwise read past silently.
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if message.defects or not message.is_multipart():
        raise OfferError("invalid_multipart", "The multipart/form-data body is malformed.")
    parts: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_content_disposition() != "form-data" or not isinstance(name, str):
            raise OfferError("invalid_multipart", "Every part must be form-data with a name.")
        if name not in _PARTS:
            raise OfferError("unknown_parameter", f"Unknown parameter: '{name}'.", name)
        if name in parts:
            raise OfferError("invalid_multipart", f"The part '{name}' is given twice.", name)
        payload = part.get_payload(decode=True)
        parts[name] = payload if isinstance(payload, bytes) else b""
    if "sdp" not in parts:
        raise OfferError("missing_required_parameter", "Missing required parameter: 'sdp'.", "sdp")
    return Offer(_sdp(parts["sdp"]), None if "session" not in parts else _session(parts["session"]))


def _sdp(data: bytes) -> str:
    try:
        text = data.decode()
    except UnicodeDecodeError:
        text = ""
    lines = text.splitlines()
    if (
        not lines
        or lines[0] != "v=0"
        or not any(line.startswith("m=") for line in lines)
        or not all(_LINE.fullmatch(line) for line in lines)
    ):
        raise OfferError(
            "invalid_offer",
            "The SDP offer is not valid: it must start with 'v=0' and have a media section.",
            "sdp",
        )
    for line in lines:
        if line.startswith("m=") and len(line.split()) < 4:
            raise OfferError("invalid_offer", f"The SDP offer's {line!r} is malformed.", "sdp")
    return text


def _session(data: bytes) -> JsonObject:
    try:
        config = json.loads(data)
    except ValueError:
        raise OfferError(
            "invalid_json", "The 'session' part is not valid JSON.", "session"
        ) from None
    if not isinstance(config, dict):
        raise OfferError("invalid_type", "'session' must be an object.", "session")
    return config


def answer_sdp(offer: str, call_id: str) -> str:
    """The answer to ``offer`` (a valid one) for the call ``call_id``."""
    digest = hashlib.sha256(call_id.encode()).digest()
    transport = [
        "c=IN IP4 0.0.0.0",
        f"a=ice-ufrag:{digest[:4].hex()}",
        f"a=ice-pwd:{base64.b64encode(digest[4:22]).decode()}",
        "a=fingerprint:sha-256 "
        + ":".join(f"{b:02X}" for b in hashlib.sha256(b"dtls:" + digest).digest()),
        "a=setup:passive",  # the offerer's DTLS role is actpass: the caller is the client
    ]
    sections = _sections(offer)
    lines = [
        "v=0",
        f"o=- {int.from_bytes(digest[22:30], 'big') >> 1} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=ice-lite",
    ]
    mids = [section.mid for section in sections if section.mid is not None]
    if mids:
        lines.append("a=group:BUNDLE " + " ".join(mids))
    for section in sections:
        mid = [] if section.mid is None else [f"a=mid:{section.mid}"]
        if section.media == "audio":
            opus = section.opus()
            lines += [f"m=audio 9 {section.proto} {opus}", *transport, *mid]
            lines += [
                f"a={section.answer_direction()}",
                "a=rtcp-mux",
                f"a=rtpmap:{opus} opus/48000/2",
                f"a=fmtp:{opus} minptime=10;useinbandfec=1",
            ]
        elif section.media == "application":  # the data channel the events go over
            lines += [f"m=application 9 {section.proto} webrtc-datachannel", *transport, *mid]
            lines.append("a=sctp-port:5000")
        else:  # video and the rest: refused with port 0, as RFC 3264 says
            lines += [f"m={section.media} 0 {section.proto} {section.formats[0]}", *mid]
    return "\r\n".join(lines) + "\r\n"


@attrs.frozen
class _Section:
    """One media section of an offer."""

    media: str
    """``audio``, ``application``, ``video``..."""
    proto: str
    """Its transport protocol, e.g. ``UDP/TLS/RTP/SAVPF``."""
    formats: tuple[str, ...]
    """Its formats (payload types), at least one."""
    attributes: tuple[str, ...]
    """Its ``a=`` lines."""

    @property
    def mid(self) -> str | None:
        """Its ``a=mid``, if it has one."""
        for line in self.attributes:
            if line.startswith("a=mid:"):
                return line[len("a=mid:") :].strip()
        return None

    def opus(self) -> str:
        """The payload type the offer gave opus, else the usual one."""
        found = (_OPUS.fullmatch(line) for line in self.attributes)
        return next((m.group(1) for m in found if m is not None), _DEFAULT_OPUS)

    def answer_direction(self) -> str:
        """The direction answering the offer's (``sendonly`` is answered ``recvonly``)."""
        offered = (_ANSWER_DIRECTION.get(line[2:]) for line in self.attributes)
        return next((direction for direction in offered if direction), "sendrecv")


def _sections(offer: str) -> list[_Section]:
    """The offer's media sections: each ``m=`` line with the ``a=`` lines after it."""
    heads: list[list[str]] = []
    for line in offer.splitlines():
        if line.startswith("m="):
            heads.append([line])
        elif heads and line.startswith("a="):
            heads[-1].append(line)
    sections = []
    for media_line, *attributes in heads:
        media, _, proto, *formats = media_line[2:].split()
        sections.append(_Section(media, proto, tuple(formats), tuple(attributes)))
    return sections
