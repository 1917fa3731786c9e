"""The loopback Realtime server of the benchmarks, in a process of its own.

One thread, one ``selectors`` loop, raw sockets: it must never be what limits a client.
Events are framed once (blasts are built as one bytes object per case and cached) and
written with non-blocking ``send`` of large slices; paced streams patch the send time into
pre-framed templates. Client frames are parsed only as far as needed to count them and
find the few types that matter; their payloads are otherwise skipped.

The scenario rides in the URL's query string (``_protocol.url``):

- ``idle``: ``session.created``, then nothing (close and ping are answered).
- ``blast`` (``kind``, ``n``, ``warm``, ``repeat``): each ``response.create`` sends the
  next burst: ``warm`` deltas first if given, then ``repeat`` times ``n``, each after a
  response/item prologue.
- ``sink``: counts ``input_audio_buffer.append``; each ``input_audio_buffer.commit`` is
  answered by ``input_audio_buffer.committed`` whose item id carries the count.
- ``phone`` (``secs``): on ``response.create``, one mu-law audio delta and one text delta
  every 20 ms for ``secs`` seconds, each stamped with its send time, then the end marker.
- ``turns`` (``secs``, ``rate``): on ``response.create``, ``rate`` whole turns a second
  (a user item, then an assistant reply of 1 s of PCM16 audio in 10 deltas and 10 text
  deltas), for ``secs`` seconds, then the end marker.

Any ``fmt`` query parameter sets the session's audio format (``audio/pcmu`` for phones).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import itertools
import os
import random
import re
import selectors
import socket
import struct
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qs, urlsplit

import _protocol as p
from _procs import CTX, become_child, reap

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TYPE = re.compile(rb'"type"\s*:\s*"([^"]+)"')
_UNMASK_LIMIT = 1 << 16  # larger client frames are counted, not read
_RECV = 1 << 20
_AUDIO_DELTAS_PER_TURN = 10  # 10 x 100 ms: one second of audio per reply


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A final, unmasked server frame."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x80 | opcode, n) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, n) + payload


def frames(events: list[dict[str, Any]]) -> bytes:
    return b"".join(frame(p.dumps(event)) for event in events)


def unmask(data: bytes | memoryview, mask: bytes) -> bytes:
    n = len(data)
    if not n:
        return b""
    key = (mask * (n // 4 + 1))[:n]  # XOR as one big integer: C speed, no numpy
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def blast(kind: str, n: int, tag: int) -> bytes:
    """A response prologue and ``n`` deltas of ``kind``, framed, as one buffer."""
    _, raw = p.BLAST_KINDS[kind]
    rid, iid = p.fake_id("resp_", tag), p.fake_id("item_", tag)
    base = tag * 10_000_000
    head = frames(p.response_prologue(rid, iid, base))
    if raw is None:
        body = (
            frame(p.dumps(p.text_delta(p.fake_id("event_", base + 10 + i), rid, iid, 1)))
            for i in range(n)
        )
    else:
        b64 = p.audio_b64(raw)
        body = (
            frame(p.dumps(p.audio_delta(p.fake_id("event_", base + 10 + i), rid, iid, b64)))
            for i in range(n)
        )
    return head + b"".join(body)


def phone_template() -> tuple[bytes, bytes, bytes]:
    """One telephony tick (an audio and a text delta, framed) split around the two send
    time slots, so a tick costs one join."""
    rid, iid = p.fake_id("resp_", 1), p.fake_id("item_", 1)
    audio = p.audio_delta(f"evt_{p.TS_SLOT}a", rid, iid, p.audio_b64(p.ULAW_FRAME), 0)
    text = p.text_delta(f"evt_{p.TS_SLOT}t", rid, iid, 1)
    a, b, c = (frame(p.dumps(audio)) + frame(p.dumps(text))).split(p.TS_SLOT.encode())
    return a, b, c


def turn(k: int, audio_b64: str) -> bytes:
    """One compressed conversation turn: a user item, then a whole assistant reply."""
    rid, user, reply = (
        p.fake_id("resp_", k),
        p.fake_id("item_", 2 * k),
        p.fake_id("item_", 2 * k + 1),
    )
    n = k * 100
    said = [{"type": "input_audio", "transcript": "Tell me more about that, please."}]
    user_item = p.message(user, "user", "completed", said)
    events: list[dict[str, Any]] = [
        {"type": "conversation.item.added", "event_id": p.fake_id("event_", n), "item": user_item}
        | {"previous_item_id": None},
        {
            "type": "conversation.item.done",
            "event_id": p.fake_id("event_", n + 1),
            "item": user_item,
        }
        | {"previous_item_id": None},
        *p.response_prologue(rid, reply, n + 2),
    ]
    for i in range(_AUDIO_DELTAS_PER_TURN):
        events.append(p.audio_delta(p.fake_id("event_", n + 10 + 2 * i), rid, reply, audio_b64))
        events.append(p.text_delta(p.fake_id("event_", n + 11 + 2 * i), rid, reply, 1))
    text = p.text_delta("", rid, reply, 1)["delta"] * _AUDIO_DELTAS_PER_TURN
    parts = [
        {"type": "output_audio", "transcript": ""},
        {"type": "output_text", "text": text},
    ]
    done_item = p.message(reply, "assistant", "completed", parts)
    at = {"response_id": rid, "item_id": reply, "output_index": 0}
    events += [
        {"type": "response.output_audio.done", "event_id": p.fake_id("event_", n + 40)}
        | at
        | {"content_index": 0},
        {"type": "response.output_text.done", "event_id": p.fake_id("event_", n + 41)}
        | at
        | {"content_index": 1, "text": text},
        *(
            {"type": "response.content_part.done", "event_id": p.fake_id("event_", n + 42 + i)}
            | at
            | {"content_index": i, "part": part}
            for i, part in enumerate(parts)
        ),
        {
            "type": "response.output_item.done",
            "event_id": p.fake_id("event_", n + 44),
            "response_id": rid,
            "output_index": 0,
            "item": done_item,
        },
        {
            "type": "conversation.item.done",
            "event_id": p.fake_id("event_", n + 45),
            "previous_item_id": user,
            "item": done_item,
        },
        {
            "type": "response.done",
            "event_id": p.fake_id("event_", n + 46),
            "response": p.response(rid, "completed", output=[done_item]),
        },
    ]
    return frames(events)


class Conn:
    """One client connection and its scenario state."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = bytearray()
        self.out: deque[memoryview] = deque()
        self.upgraded = False
        self.closing = False  # close frame queued: cut once the queue has drained
        self.dead = False
        self.writing = False  # registered for EVENT_WRITE
        self.params: dict[str, str] = {}
        self.bursts: deque[bytes] = deque()  # blast: what each response.create sends
        self.appends = 0
        self.sent = 0  # paced deltas sent
        self.max_lag = 0.0  # paced: how late the server itself was, at worst
        self.ticks = 0
        self.due = 0.0


class Server:
    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.sel = selectors.DefaultSelector()
        self.sel.register(listener, selectors.EVENT_READ, None)
        self.timers: list[tuple[float, int, Conn]] = []
        self.seq = itertools.count()
        self.cache: dict[tuple[str, int, int], bytes] = {}
        self.phone = phone_template()
        self.turn_audio = p.audio_b64(4800)

    def run(self, parent: int) -> None:
        while True:
            timeout = 0.5
            if self.timers:
                timeout = min(timeout, max(0.0, self.timers[0][0] - time.monotonic()))
            for key, events in self.sel.select(timeout):
                if key.data is None:
                    self.accept()
                    continue
                conn: Conn = key.data
                if events & selectors.EVENT_WRITE:
                    self.flush(conn)
                if events & selectors.EVENT_READ and not conn.dead:
                    self.read(conn)
            self.fire_timers()
            if os.getppid() != parent:  # orphaned: the harness is gone
                return

    # --- sockets ----------------------------------------------------------------------------

    def accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sel.register(sock, selectors.EVENT_READ, Conn(sock))

    def drop(self, conn: Conn) -> None:
        if conn.dead:
            return
        conn.dead = True
        conn.out.clear()
        conn.bursts.clear()
        self.sel.unregister(conn.sock)
        conn.sock.close()

    def send(self, conn: Conn, data: bytes) -> None:
        if conn.dead or conn.closing:
            return
        conn.out.append(memoryview(data))
        if len(conn.out) == 1:
            self.flush(conn)

    def flush(self, conn: Conn) -> None:
        out = conn.out
        while out:
            try:
                sent = conn.sock.send(out[0])
            except BlockingIOError:
                break
            except OSError:
                self.drop(conn)
                return
            if sent < len(out[0]):
                out[0] = out[0][sent:]
                break
            out.popleft()
        if not out and conn.closing:
            self.drop(conn)
            return
        want = bool(out)
        if want != conn.writing:
            conn.writing = want
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want else 0)
            self.sel.modify(conn.sock, events, conn)

    def read(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(_RECV)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop(conn)
            return
        conn.inbuf += data
        if conn.upgraded:
            self.client_frames(conn)
        else:
            self.handshake(conn)

    # --- protocol ---------------------------------------------------------------------------

    def handshake(self, conn: Conn) -> None:
        buf = conn.inbuf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > 65536:
                self.drop(conn)
            return
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        del buf[: end + 4]
        target = lines[0].split(" ")[1] if " " in lines[0] else "/"
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        key = headers.get("sec-websocket-key")
        if not key:
            conn.sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            self.drop(conn)
            return
        accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
        reply = (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n"
        )
        offered = headers.get("sec-websocket-protocol")
        if offered:
            reply += f"Sec-WebSocket-Protocol: {offered.split(',')[0].strip()}\r\n"
        conn.params = {k: v[-1] for k, v in parse_qs(urlsplit(target).query).items()}
        conn.upgraded = True
        fmt = conn.params.get("fmt", "audio/pcm")
        if conn.params.get("scenario") == "blast":
            kind, n, warm = conn.params["kind"], int(conn.params["n"]), int(conn.params["warm"])
            if warm:
                conn.bursts.append(self.cached(kind, warm, 1))
            for _ in range(int(conn.params.get("repeat", 1))):
                conn.bursts.append(self.cached(kind, n, 2))
        hello = frame(p.dumps(p.session_created(fmt)))
        self.send(conn, (reply + "\r\n").encode() + hello)
        if buf:
            self.client_frames(conn)

    def cached(self, kind: str, n: int, tag: int) -> bytes:
        key = (kind, n, tag)
        if key not in self.cache:
            if len(self.cache) > 4:
                self.cache.clear()
            self.cache[key] = blast(kind, n, tag)
        return self.cache[key]

    def client_frames(self, conn: Conn) -> None:
        buf = conn.inbuf
        size, at = len(buf), 0
        while size - at >= 2 and not conn.dead and not conn.closing:
            b0, b1 = buf[at], buf[at + 1]
            length, start = b1 & 0x7F, at + 2
            if length == 126:
                if size - start < 2:
                    break
                length, start = int.from_bytes(buf[start : start + 2], "big"), start + 2
            elif length == 127:
                if size - start < 8:
                    break
                length, start = int.from_bytes(buf[start : start + 8], "big"), start + 8
            mask = b""
            if b1 & 0x80:
                if size - start < 4:
                    break
                mask, start = bytes(buf[start : start + 4]), start + 4
            if size - start < length:
                break
            opcode, fin = b0 & 0x0F, b0 & 0x80
            payload = memoryview(buf)[start : start + length]
            at = start + length
            if opcode in (0x0, 0x1, 0x2):
                if fin:
                    self.message(conn, payload, mask)
            elif opcode == 0x8:  # close: answer with the same code, then cut
                self.send(conn, frame(unmask(payload[:2], mask) if mask else b"", 0x8))
                conn.closing = True
                if not conn.out:
                    self.drop(conn)
            elif opcode == 0x9:
                self.send(conn, frame(unmask(payload, mask) if mask else bytes(payload), 0xA))
            payload.release()
        if not conn.dead:
            del buf[:at]

    def message(self, conn: Conn, payload: memoryview, mask: bytes) -> None:
        if len(payload) > _UNMASK_LIMIT:
            conn.appends += 1  # only audio appends are this large here
            return
        found = _TYPE.search(unmask(payload, mask) if mask else bytes(payload))
        kind = found.group(1) if found else b""
        if kind == b"input_audio_buffer.append":
            conn.appends += 1
        elif kind == b"input_audio_buffer.commit":
            self.send(conn, frame(p.dumps(p.committed(conn.appends))))
            conn.appends = 0
        elif kind == b"response.create":
            self.go(conn)

    def go(self, conn: Conn) -> None:
        scenario = conn.params.get("scenario")
        if scenario == "blast" and conn.bursts:
            self.send(conn, conn.bursts.popleft())
        elif scenario == "phone":
            self.send(
                conn, frames(p.response_prologue(p.fake_id("resp_", 1), p.fake_id("item_", 1), 0))
            )
            conn.ticks = round(float(conn.params["secs"]) / p.TICK)
            # Calls are not in phase: each starts somewhere in the first 20 ms.
            self.schedule(conn, time.monotonic() + random.uniform(0, p.TICK))
        elif scenario == "turns":
            rate = float(conn.params["rate"])
            conn.ticks = round(float(conn.params["secs"]) * rate)
            self.schedule(conn, time.monotonic())

    # --- paced streams ----------------------------------------------------------------------

    def schedule(self, conn: Conn, due: float) -> None:
        conn.due = due
        heapq.heappush(self.timers, (due, next(self.seq), conn))

    def fire_timers(self) -> None:
        timers = self.timers
        now = time.monotonic()
        while timers and timers[0][0] <= now:
            due, _, conn = heapq.heappop(timers)
            if conn.dead:
                continue
            conn.max_lag = max(conn.max_lag, now - due)
            if conn.params["scenario"] == "phone":
                a, b, c = self.phone
                stamp = b"%.6f" % time.time()
                self.send(conn, b"".join((a, stamp, b, stamp, c)))
                conn.sent += 2
                step = p.TICK
            else:
                self.send(conn, turn(conn.sent + 1, self.turn_audio))
                conn.sent += 1
                step = 1.0 / float(conn.params["rate"])
            conn.ticks -= 1
            if conn.ticks > 0:
                self.schedule(conn, due + step)  # on the original grid: no drift
            else:
                marker = p.end_marker(conn.sent, conn.max_lag * 1000)
                self.send(conn, frame(p.dumps(marker)))
            now = time.monotonic()


def _serve(report: Any, parent: int) -> None:
    become_child()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    listener.setblocking(False)
    report.send(listener.getsockname()[1])
    report.close()
    Server(listener).run(parent)


class ServerProcess:
    """The server in a child process; a context manager that always ends it."""

    def __init__(self) -> None:
        receive, send = CTX.Pipe(duplex=False)
        self.process = CTX.Process(
            target=_serve, args=(send, os.getpid()), name="bench-server", daemon=True
        )
        self.process.start()
        send.close()
        try:
            if not receive.poll(10):
                raise RuntimeError("the benchmark server did not start within 10 s")
            self.port: int = receive.recv()
        except BaseException:
            reap(self.process)
            raise
        finally:
            receive.close()

    def stop(self) -> None:
        reap(self.process)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
