"""The measurements; each runs in a child process of its own (``_procs.run_in_child``).

Every function takes the server's port and a flavour, returns plain data, and closes what
it opened even when it fails (the child is killed on a timeout anyway).
"""

from __future__ import annotations

import base64
import gc
import json
import time
from collections.abc import Callable
from typing import Any

import _protocol as p
import websocket
from _clients import (
    GO_JSON,
    HEADERS,
    SESSIONS,
    Counter,
    Tally,
    close_all,
    openai_connect,
)

BLAST_TIMEOUT = 60.0
COMMIT = {"type": "input_audio_buffer.commit"}
APPEND = "input_audio_buffer.append"


def proc_status(field: str) -> int:
    """A number from /proc/self/status: ``VmRSS`` (kB) or ``Threads``."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# --- (a) receive ------------------------------------------------------------------------------


def receive(
    flavour: str, port: int, cases: list[tuple[str, int]], warm: int, repeat: int
) -> dict[str, float]:
    """µs per event, socket -> callback, per blasted case: from sending the request for a
    burst to the callback of its last delta, divided by the deltas. After a warm-up burst,
    the best of ``repeat`` bursts: noise on a shared machine only ever adds time."""
    out = {}
    for kind, n in cases:
        params = {"kind": kind, "n": n, "warm": warm, "repeat": repeat}
        event_type = p.BLAST_KINDS[kind][0]
        times = _RECEIVERS[flavour](port, params, event_type, (warm,) + (n,) * repeat)
        out[kind] = min(times[1:]) / n * 1e6
    return out


def _receive_raw(
    port: int, params: dict[str, Any], event_type: str, bursts: tuple[int, ...]
) -> list[float]:
    ws = websocket.create_connection(
        p.url(port, "blast", **params),
        header=HEADERS,
        timeout=BLAST_TIMEOUT,  # bounds each recv()
        skip_utf8_validation=True,
    )
    try:
        _recv_until(ws, "session.created")
        times = []
        for n in bursts:
            start = time.perf_counter()
            ws.send(GO_JSON)
            seen = 0
            while seen < n:
                if json.loads(ws.recv())["type"] == event_type:
                    seen += 1
            times.append(time.perf_counter() - start)
        return times
    finally:
        ws.close(timeout=2)


def _receive_wire(
    port: int, params: dict[str, Any], event_type: str, bursts: tuple[int, ...]
) -> list[float]:
    # Not a client: the bytes of each burst read off the socket, unparsed. How fast the
    # server and the kernel deliver, so a client figure near it would mean the server is
    # the bottleneck.
    from _server import blast

    ws = websocket.create_connection(
        p.url(port, "blast", **params), header=HEADERS, timeout=BLAST_TIMEOUT
    )
    try:
        _recv_until(ws, "session.created")  # then the server is silent until asked
        buffer = memoryview(bytearray(1 << 20))
        times = []
        for i, n in enumerate(bursts):
            left = len(blast(params["kind"], n, 1 if i == 0 else 2))
            start = time.perf_counter()
            ws.send(GO_JSON)
            while left > 0:
                got = ws.sock.recv_into(buffer)
                if not got:
                    raise ConnectionError("the server closed mid-burst")
                left -= got
            times.append(time.perf_counter() - start)
        return times
    finally:
        ws.close(timeout=2)


def _recv_until(ws: websocket.WebSocket, event_type: str) -> dict[str, Any]:
    while True:
        event = json.loads(ws.recv())
        if event["type"] == event_type:
            return event


def _receive_callbacks(flavour: str) -> Callable[..., list[float]]:
    def run(
        port: int, params: dict[str, Any], event_type: str, bursts: tuple[int, ...]
    ) -> list[float]:
        counter = Counter()
        session = SESSIONS[flavour](port, "blast", params, {event_type: counter})
        session.connect()
        try:
            times = []
            for n in bursts:
                counter.reset(n)
                start = time.perf_counter()
                session.go()
                if not counter.done.wait(BLAST_TIMEOUT):
                    raise TimeoutError(f"{flavour}: {counter.count} of {n} events arrived")
                times.append(counter.end - start)
            return times
        finally:
            session.close()

    return run


def _receive_openai(
    port: int, params: dict[str, Any], event_type: str, bursts: tuple[int, ...]
) -> list[float]:
    # The SDK's documented loop, on the main thread; its websockets connection reads on a
    # thread of its own. (No receive timeout in the SDK: the child's timeout bounds it.)
    conn = openai_connect(port, "blast", params)
    try:
        events = iter(conn)
        while next(events).type != "session.created":
            pass
        times = []
        for n in bursts:
            start = time.perf_counter()
            conn.response.create()
            seen = 0
            while seen < n:
                if next(events).type == event_type:
                    seen += 1
            times.append(time.perf_counter() - start)
        return times
    finally:
        conn.close()


_RECEIVERS = {
    "wire": _receive_wire,
    "raw": _receive_raw,
    "floor": _receive_callbacks("floor"),
    "realtime_sync": _receive_callbacks("realtime_sync"),
    "openai": _receive_openai,
}


# --- (b) send ---------------------------------------------------------------------------------


def send(
    flavour: str, port: int, cases: list[tuple[str, int]], warm: int, repeat: int
) -> dict[str, float]:
    """µs per ``input_audio_buffer.append`` from raw audio bytes (each flavour base64-encodes
    them), through a commit whose answer proves the server counted every append; the best
    of ``repeat`` bursts after a warm-up one."""
    out = {}
    for kind, n in cases:
        raw_bytes, fmt = p.SEND_KINDS[kind]
        audio = p.audio_bytes(raw_bytes)
        times = _SENDERS[flavour](port, fmt, audio, (warm,) + (n,) * repeat)
        out[kind] = min(times[1:]) / n * 1e6
    return out


def _check_count(flavour: str, item_id: str, n: int) -> None:
    counted = p.committed_count(item_id)
    if counted != n:
        raise RuntimeError(f"{flavour}: the server counted {counted} of {n} appends")


def _send_raw(port: int, fmt: str, audio: bytes, bursts: tuple[int, ...]) -> list[float]:
    ws = websocket.create_connection(
        p.url(port, "sink", fmt=fmt), header=HEADERS, timeout=BLAST_TIMEOUT
    )
    try:
        _recv_until(ws, "session.created")
        times = []
        for n in bursts:
            start = time.perf_counter()
            for _ in range(n):
                ws.send(json.dumps({"type": APPEND, "audio": base64.b64encode(audio).decode()}))
            ws.send(json.dumps(COMMIT))
            answer = _recv_until(ws, "input_audio_buffer.committed")
            times.append(time.perf_counter() - start)
            _check_count("raw", answer["item_id"], n)
        return times
    finally:
        ws.close(timeout=2)


def _send_sync(port: int, fmt: str, audio: bytes, bursts: tuple[int, ...]) -> list[float]:
    from _clients import SyncSession

    session = SyncSession(port, "sink", {"fmt": fmt}, {})
    session.connect()
    client = session.client
    try:
        times = []
        for n in bursts:
            start = time.perf_counter()
            for _ in range(n):
                client.input_audio_buffer.append(audio=audio)
            answer = client.expect("input_audio_buffer.committed")
            client.send(COMMIT)
            event = answer.wait(BLAST_TIMEOUT)
            times.append(time.perf_counter() - start)
            _check_count("realtime_sync", event.item_id, n)
        return times
    finally:
        session.close()


def _send_openai(port: int, fmt: str, audio: bytes, bursts: tuple[int, ...]) -> list[float]:
    conn = openai_connect(port, "sink", {"fmt": fmt})
    try:
        events = iter(conn)
        while next(events).type != "session.created":
            pass
        times = []
        for n in bursts:
            start = time.perf_counter()
            for _ in range(n):
                conn.input_audio_buffer.append(audio=base64.b64encode(audio).decode())
            conn.input_audio_buffer.commit()
            answer = next(events)
            while answer.type != "input_audio_buffer.committed":
                answer = next(events)
            times.append(time.perf_counter() - start)
            _check_count("openai", answer.item_id, n)
        return times
    finally:
        conn.close()


_SENDERS = {"raw": _send_raw, "realtime_sync": _send_sync, "openai": _send_openai}


# --- (c) telephony ----------------------------------------------------------------------------


def telephony(flavour: str, port: int, sessions: int, secs: float) -> dict[str, Any]:
    """``sessions`` calls at once, each 50 mu-law audio + 50 text deltas a second for
    ``secs`` seconds: send -> callback latency, CPU per event of this process, losses."""
    params = {"secs": secs, "fmt": "audio/pcmu"}
    make = SESSIONS[flavour]
    tallies = [Tally(typed=make.typed) for _ in range(sessions)]
    opened: list[Any] = []
    gc.collect()
    threads_before = proc_status("Threads")
    try:
        for tally in tallies:
            session = make(port, "phone", params, tally.handlers())
            session.connect()
            opened.append(session)
        threads = (proc_status("Threads") - threads_before) / sessions
        cpu, wall = time.process_time(), time.perf_counter()
        for session in opened:
            session.go()
        deadline = time.monotonic() + secs + 30 + sessions * 0.2
        for tally in tallies:
            tally.done.wait(max(0.0, deadline - time.monotonic()))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        close_all(opened)
    expected = 2 * round(secs / p.TICK)
    latencies = [lat for tally in tallies for lat in tally.latencies]
    received = len(latencies)
    sent = sum(expected if tally.sent is None else tally.sent for tally in tallies)
    return {
        "sessions": sessions,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies, default=float("nan")) * 1000,
        "cpu_us_per_event": cpu / max(1, received) * 1e6,
        "cpu_share": cpu / wall,  # cores this process kept busy
        "received": received,
        "sent": sent,
        "lost": sent - received,
        "unfinished": sum(not tally.done.is_set() for tally in tallies),
        "threads_per_session": threads,
        "server_max_lag_ms": max(tally.server_lag_ms for tally in tallies),
    }


# --- (d) close --------------------------------------------------------------------------------


def close_latency(flavour: str, port: int, cycles: int) -> dict[str, float]:
    """Connect, then time ``close()``, ``cycles`` times. For the floor that is
    ``WebSocketApp.close()``; whether its ``run_forever`` thread ended within 0.3 s after
    is counted apart (it mostly does not: see ``FloorSession.close``)."""
    times, lingering = [], 0
    for _ in range(cycles):
        session = SESSIONS[flavour](port, "idle", {}, {})
        session.connect()
        start = time.perf_counter()
        session.close(**({"wait": 0.0} if flavour == "floor" else {}))
        times.append(time.perf_counter() - start)
        if flavour == "floor":
            time.sleep(0.3)
            lingering += session.running
    out = {
        "p50_ms": percentile(times, 0.50) * 1000,
        "p99_ms": percentile(times, 0.99) * 1000,
        "max_ms": max(times) * 1000,
        "cycles": cycles,
    }
    return out | ({"lingering": lingering} if flavour == "floor" else {})


# --- (e) idle sessions ------------------------------------------------------------------------


def idle(flavour: str, port: int, sessions: int) -> dict[str, float]:
    """RSS and OS threads per connected, idle session."""
    if flavour == "realtime_sync":
        import realtime_sync  # noqa: F401  (imports are not per-session memory)
    elif flavour == "openai":
        import openai  # noqa: F401
    opened: list[Any] = []
    # A throwaway session first: one-time allocations are not per-session memory either.
    warm = SESSIONS[flavour](port, "idle", {}, {})
    warm.connect()
    warm.close()
    gc.collect()
    time.sleep(0.2)
    rss, threads = proc_status("VmRSS"), proc_status("Threads")
    try:
        for _ in range(sessions):
            session = SESSIONS[flavour](port, "idle", {}, {})
            session.connect()
            opened.append(session)
        time.sleep(0.5)
        gc.collect()
        rss = (proc_status("VmRSS") - rss) / sessions
        threads = (proc_status("Threads") - threads) / sessions
    finally:
        close_all(opened)
    return {"rss_kb_per_session": rss, "threads_per_session": threads}


# --- (f) long session -------------------------------------------------------------------------


def long_session(port: int, secs: float, rate: float, options: dict[str, Any]) -> dict[str, Any]:
    """One realtime_sync session fed ``rate`` whole turns (1 s of audio each) a second for
    ``secs`` seconds: RSS as it goes, and the conversation's size at the end."""
    from _clients import SyncSession

    tally = Tally(typed=True)
    session = SyncSession(
        port, "turns", {"secs": secs, "rate": rate}, {"response.done": tally.end}, **options
    )
    gc.collect()
    samples: list[tuple[float, float]] = []
    session.connect()
    try:
        start = time.monotonic()
        samples.append((0.0, proc_status("VmRSS") / 1024))
        session.go()
        stop = start + secs + 30
        while not tally.done.wait(0.25) and time.monotonic() < stop:
            samples.append((time.monotonic() - start, proc_status("VmRSS") / 1024))
        samples.append((time.monotonic() - start, proc_status("VmRSS") / 1024))
        items = session.client.conversation.items
        audio = sum(len(item.audio) for item in items)
    finally:
        session.close()
    middle = min(samples, key=lambda sample: abs(sample[0] - secs / 2))
    return {
        "options": options,
        "turns": tally.sent,
        "finished": tally.done.is_set(),
        "simulated_minutes": (tally.sent or 0) / 60,
        "rss_start_mb": samples[0][1],
        "rss_middle_mb": middle[1],
        "rss_end_mb": samples[-1][1],
        "rss_peak_mb": max(rss for _, rss in samples),
        "items": len(items),
        "audio_mb_kept": audio / 2**20,
    }
