"""Reading WebSocket frames: websocket-client's frame reader, with a read-ahead buffer."""

from __future__ import annotations

from collections.abc import Callable

import websocket

__all__ = ["ReadAhead"]

_READ_AHEAD = 65536  # bytes asked of the socket at a time: many small frames per call
# Bytes asked at most per call while reading a large frame: Python allocates the whole size
# asked for before the call, whatever arrives.
_READ_MOST = 1 << 20


class ReadAhead(websocket._abnf.frame_buffer):
    """websocket-client's frame reader with a read-ahead buffer.

    The stock reader asks the socket for exactly what it needs next (a 2-byte header, then
    the length, then the payload): three system calls per frame. This one asks for up to
    64 KB at once and serves headers and payloads from that, so a burst of small events
    costs one call for hundreds of frames. Frames are parsed and checked as before.
    """

    def __init__(self, recv: Callable[[int], bytes]) -> None:
        super().__init__(recv, skip_utf8_validation=True)
        self._data = b""
        self._at = 0  # how much of _data was served

    def recv_strict(self, bufsize: int) -> bytes:
        at, end = self._at, self._at + bufsize
        if end <= len(self._data):
            self._at = end
            return self._data[at:end]
        parts = [self._data[at:]]
        have = len(parts[0])
        try:
            while have < bufsize:
                # Asks for 64 KB, or the rest of a large frame up to 1 MB; gets what is there.
                part = self.recv(min(max(_READ_AHEAD, bufsize - have), _READ_MOST))
                parts.append(part)
                have += len(part)
        finally:  # a read that failed keeps what came before it
            self._data, self._at = b"".join(parts), 0
        data = self._data
        if have == bufsize:  # nothing read past it: no copy (a large frame, mostly)
            self._data = b""
            return data
        if bufsize > _READ_AHEAD:  # keep only what follows a large frame, not all of it
            self._data = data[bufsize:]
            return data[:bufsize]
        self._at = bufsize
        return data[:bufsize]

    def buffered(self) -> bool:
        """Whether any unread bytes are buffered (a whole frame, or part of one)."""
        return len(self._data) > self._at

    def frame_ready(self) -> bool:
        """Whether a whole frame is buffered: reading it then cannot wait on the socket."""
        data, at = self._data, self._at
        if len(data) - at < 2:
            return False
        length = data[at + 1] & 0x7F
        start = at + 2
        if length == 126:
            start += 2
            length = int.from_bytes(data[at + 2 : start], "big")
        elif length == 127:
            start += 8
            length = int.from_bytes(data[at + 2 : start], "big")
        if data[at + 1] & 0x80:  # masked (servers do not mask, but the frame says so)
            start += 4
        return start + length <= len(data)
