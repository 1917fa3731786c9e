"""A phone call bridged to a Realtime session: Twilio media streams on Flask.

    pip install 'realtime_sync[examples]'              # Flask and flask-sock
    python examples/telephony_bridge.py --local        # or with OPENAI_API_KEY set

Point a Twilio number's voice webhook at TwiML that connects the call to this server,
``<Response><Connect><Stream url="wss://<your host>/media-stream"/></Connect></Response>``
(a public ``wss://`` address: a reverse proxy or a tunnel in front of this port). Each call
then holds one WebSocket here, served by a plain blocking Flask view on its own thread, and
one Realtime session; no asyncio anywhere.

Both sides speak G.711 μ-law at 8 kHz, so audio passes through untouched: the caller's
20 ms frames go into the session's input buffer, and the model's audio goes back to the
call. The session's server VAD decides when the caller has finished speaking (it commits
the audio and starts the answer by itself), and when the caller starts speaking over the
answer (``input_audio_buffer.speech_started``): the bridge then tells Twilio to drop the
audio it has not played yet, and the client cuts the answer in the conversation at what
the caller actually heard, which the bridge reports as Twilio plays its marks.

What this relies on from Twilio's documentation of bidirectional media streams
(``<Connect><Stream>``), "Media Streams - WebSocket Messages":

- every message is a JSON text frame with an ``event`` field (binary frames are refused);
- Twilio sends ``connected`` first, then ``start`` once, whose ``start.streamSid`` names the
  stream and whose ``start.mediaFormat`` is ``{"encoding": "audio/x-mulaw", "sampleRate":
  8000, "channels": 1}``; then ``media`` messages, whose ``media.payload`` is base64 raw
  μ-law audio (20 ms each from a phone), ``mark`` messages, and ``stop`` at the end;
- we may send ``{"event": "media", "streamSid": ..., "media": {"payload": <base64 μ-law>}}``
  (played in order, buffered by Twilio), ``{"event": "mark", "streamSid": ..., "mark":
  {"name": ...}}``, which Twilio sends back with the same name once the audio sent before
  it has played, and ``{"event": "clear", "streamSid": ...}``, which discards the audio
  not yet played; Twilio then sends back the marks still pending.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import sys
import threading
from typing import Any

from _connect import client_options
from flask import Flask
from flask_sock import Sock
from simple_websocket import ConnectionClosed  # what flask-sock's WebSocket raises
from werkzeug.serving import make_server

from realtime_sync import RealtimeClient, RealtimeError

SESSION = {
    "instructions": "You are answering a phone call. Be brief and friendly.",
    "output_modalities": ["audio"],
    "audio": {
        # Twilio's own format both ways: nothing to convert or resample.
        "input": {"format": {"type": "audio/pcmu"}, "turn_detection": {"type": "server_vad"}},
        "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"},
    },
}
ULAW_BYTES_PER_MS = 8  # 8000 one-byte samples a second


def log(message: str) -> None:
    print(message, flush=True)


class Call:
    """One phone call: the Twilio WebSocket and the Realtime session behind it.

    Twilio's messages are read in the view's thread (:meth:`run`); the session's events
    arrive on the client's dispatcher thread (the ``on_*`` handlers), which is the only
    thread that writes to Twilio.
    """

    def __init__(self, twilio: Any, options: dict[str, Any]) -> None:
        self.twilio = twilio
        self.stream_sid: str | None = None
        self.sent_ms: dict[str, float] = {}  # assistant item -> ms of its audio sent to Twilio
        self.cleared: set[str] = set()  # items whose unplayed audio Twilio has dropped
        self.lock = threading.Lock()
        self.client = RealtimeClient(**options)
        self.client.on("response.output_audio.delta", self.on_audio)
        self.client.on("input_audio_buffer.speech_started", self.on_speech_started)
        self.client.on("conversation.item.truncated", self.on_truncated)
        self.client.on("error", lambda ev: log(f"realtime error: {ev.error.message}"))

    def run(self) -> None:
        with self.client:  # one Realtime session for the length of the call
            self.client.session.update(session=SESSION)
            while True:
                try:
                    message = json.loads(self.twilio.receive())
                except ConnectionClosed:
                    log(f"call {self.stream_sid}: Twilio hung up")
                    return
                event = message.get("event")
                if event == "start":
                    self.stream_sid = message["start"]["streamSid"]
                    log(f"call {self.stream_sid}: started")
                elif event == "media":
                    # Base64 μ-law, as the session takes it: passed on without decoding.
                    self.client.input_audio_buffer.append(audio=message["media"]["payload"])
                elif event == "mark":
                    self.on_mark(message["mark"]["name"])
                elif event == "stop":
                    log(f"call {self.stream_sid}: ended")
                    return

    # Twilio side (the view's thread)

    def on_mark(self, name: str) -> None:
        """Twilio has played our audio up to this mark: tell the client how much of the
        item the caller heard, which is where an interruption will cut it."""
        item_id, played_ms = name.rsplit(":", 1)
        with self.lock:
            if item_id in self.cleared:  # sent back by a clear: dropped, not played
                return
        self.client.report_playback(float(played_ms), item_id=item_id)

    # Realtime side (the client's dispatcher thread)

    def on_audio(self, event: Any) -> None:
        """Forward the model's audio to the call, with a mark after each piece."""
        item_id = event.item_id
        with self.lock:
            if item_id in self.cleared:  # the rest of an answer the caller cut off
                return
            start = self.sent_ms.get(item_id, 0.0)
            end = start + len(base64.b64decode(event.delta)) / ULAW_BYTES_PER_MS
            self.sent_ms[item_id] = end
        if start == 0:
            # Nothing heard yet: a barge-in before the first mark removes the whole answer.
            self.client.report_playback(0, item_id=item_id)
        self.send({"event": "media", "media": {"payload": event.delta}})
        self.send({"event": "mark", "mark": {"name": f"{item_id}:{end:.0f}"}})

    def on_speech_started(self, event: Any) -> None:
        """The caller speaks: stop playing. By now the client has cancelled the response
        (if still in progress) and truncated the answer at the last reported mark."""
        with self.lock:
            self.cleared.update(self.sent_ms)
        self.send({"event": "clear"})

    def on_truncated(self, event: Any) -> None:
        log(f"caller cut in: {event.item_id} truncated at {event.audio_end_ms} ms")

    def send(self, message: dict[str, Any]) -> None:
        if self.stream_sid is None:
            return
        with contextlib.suppress(ConnectionClosed):  # the call is over: run() ends it
            self.twilio.send(json.dumps({**message, "streamSid": self.stream_sid}))


def create_app(options: dict[str, Any]) -> Flask:
    """The app; ``options`` are the RealtimeClient arguments each call's session uses."""
    app = Flask(__name__)
    sock = Sock(app)

    @sock.route("/media-stream")
    def media_stream(twilio: Any) -> None:
        try:
            Call(twilio, options).run()
        except RealtimeError as exc:  # the session could not start, or was lost for good
            log(f"realtime session failed: {type(exc).__name__}: {exc}")

    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--local", action="store_true", help="use the built-in local server")
    parser.add_argument("--port", type=int, default=5050, help="0 picks a free port")
    args = parser.parse_args()
    with client_options(args.local) as options:
        # Threaded: each call's WebSocket holds a thread for the length of the call. In
        # production, a WSGI server with threads (e.g. gunicorn --threads 100).
        server = make_server("127.0.0.1", args.port, create_app(options), threaded=True)
        log(f"listening on ws://127.0.0.1:{server.port}/media-stream")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
