"""Talk with the model: your microphone in, its voice out of your speakers.

    pip install 'realtime_sync[audio]'     # sounddevice, which needs the PortAudio library
    python examples/microphone.py          # OpenAI with OPENAI_API_KEY set; Ctrl+C to stop
    python examples/microphone.py --local  # the local server (it understands only its own
                                           # synthesised speech, not a voice)

Use headphones: from loudspeakers the model hears itself and takes it for you cutting in.

The session's server VAD hears when you start and stop speaking: it commits what you said
and answers by itself, and when you talk over an answer, playback stops and the client
cuts the answer in the conversation at what you actually heard.
"""

from __future__ import annotations

import argparse
import base64
import queue
import sys
import threading
from types import ModuleType
from typing import Any

from _connect import realtime_client

from realtime_sync import RealtimeError

RATE = 24000  # the session's default audio format: 16-bit PCM at 24 kHz, mono
BLOCK = RATE // 10  # 100 ms per block, both ways
BYTES_PER_MS = RATE * 2 // 1000


def import_sounddevice() -> ModuleType:
    try:
        import sounddevice
    except (ImportError, OSError) as exc:  # OSError: sounddevice without PortAudio
        print(
            f"microphone.py needs sounddevice: pip install 'realtime_sync[audio]' ({exc})",
            file=sys.stderr,
        )
        sys.exit(2)
    return sounddevice


class Speaker:
    """Plays the model's audio as it arrives and counts what has been played.

    ``callback`` runs on the audio device's thread, which must never wait for long: it only
    takes what is buffered, under a lock that is held for a copy at most.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.buffer = bytearray()
        self.item_id: str | None = None  # the answer being played
        self.played = 0  # bytes of it played
        self.stopped: set[str] = set()  # answers cut off: the rest of them is not played

    def add(self, item_id: str, pcm: bytes) -> None:
        with self.lock:
            if item_id in self.stopped:
                return
            if item_id != self.item_id:
                self.item_id, self.played = item_id, 0
            self.buffer += pcm

    def stop(self) -> None:
        with self.lock:
            self.buffer.clear()
            if self.item_id is not None:
                self.stopped.add(self.item_id)

    def progress(self) -> tuple[str | None, float, bool]:
        """(answer, ms of it played, whether everything received has been played)."""
        with self.lock:
            return self.item_id, self.played / BYTES_PER_MS, not self.buffer

    def callback(self, outdata: Any, frames: int, time: Any, status: Any) -> None:
        with self.lock:
            chunk = bytes(self.buffer[: len(outdata)])
            del self.buffer[: len(chunk)]
            self.played += len(chunk)
        outdata[: len(chunk)] = chunk
        outdata[len(chunk) :] = bytes(len(outdata) - len(chunk))  # silence


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--local", action="store_true", help="use the built-in local server")
    parser.add_argument("--turns", type=int, help="stop after this many answers (default: never)")
    args = parser.parse_args()
    sd = import_sounddevice()

    microphone: queue.Queue[bytes] = queue.Queue()
    speaker = Speaker()
    answers: list[Any] = []  # response.done events
    try:
        with realtime_client(args.local) as client:
            client.session.update(
                session={
                    "output_modalities": ["audio"],
                    "audio": {
                        "input": {
                            "turn_detection": {"type": "server_vad"},
                            "transcription": {"model": "gpt-4o-mini-transcribe"},
                        }
                    },
                }
            )
            client.on(
                "response.output_audio.delta",
                lambda ev: speaker.add(ev.item_id, base64.b64decode(ev.delta)),
            )
            # You started talking: stop playing. The client, told how much was played, has
            # cancelled the answer and cut it there.
            client.on("input_audio_buffer.speech_started", lambda ev: speaker.stop())
            client.on(
                "conversation.item.truncated",
                lambda ev: print(
                    f"(interrupted: you heard {ev.audio_end_ms} ms of it)", flush=True
                ),
            )
            client.on(
                "conversation.item.input_audio_transcription.completed",
                lambda ev: print(f"you: {ev.transcript}", flush=True),
            )
            client.on(
                "response.output_audio_transcript.done",
                lambda ev: print(f"assistant: {ev.transcript}", flush=True),
            )
            client.on("response.done", answers.append)

            options = {"samplerate": RATE, "channels": 1, "dtype": "int16", "blocksize": BLOCK}
            with (
                # The device's thread only queues what it recorded; this thread sends it.
                sd.RawInputStream(**options, callback=lambda data, *_: microphone.put(bytes(data))),
                sd.RawOutputStream(**options, callback=speaker.callback),
            ):
                print("listening (Ctrl+C to stop)", flush=True)
                while True:
                    client.input_audio_buffer.append(audio=microphone.get(timeout=5))
                    finished = args.turns is not None and len(answers) >= args.turns
                    item_id, played_ms, idle = speaker.progress()
                    if item_id is not None:
                        client.report_playback(played_ms, item_id=item_id)
                    if finished and idle:
                        break  # the last answer has been played to the end
    except KeyboardInterrupt:
        pass
    except queue.Empty:
        print("the microphone stopped sending audio", file=sys.stderr)
        return 1
    except RealtimeError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
