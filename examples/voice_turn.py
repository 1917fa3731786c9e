"""One voice turn: a WAV file in, the spoken answer out as a WAV file.

    python examples/voice_turn.py question.wav --out answer.wav
    python examples/voice_turn.py --local     # offline, with a question the server "hears"

Any WAV works (rate, channels, 8/16/24/32-bit): it is converted to the session's format.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _connect import realtime_client

from realtime_sync import RealtimeError, audio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("question", nargs="?", help="a WAV file (default: a synthesised one)")
    parser.add_argument("--out", default="answer.wav", help="where to save the spoken reply")
    parser.add_argument("--local", action="store_true", help="use the built-in local server")
    args = parser.parse_args()
    question = args.question
    if question is None:  # offline: speech the local server can "hear"
        from realtime_sync.testing import synthesize_speech

        question = str(Path(tempfile.mkdtemp()) / "question.wav")
        audio.write_wav(question, synthesize_speech("What time is it?", "pcm16"))
    try:
        with realtime_client(args.local) as client:
            client.session.update(session={"output_modalities": ["audio"]})
            sent_ms = client.append_audio(question, chunk_ms=100)
            client.input_audio_buffer.commit()
            reply = client.create_response().wait(timeout=60)
            reply.save_wav(args.out)
            answer = audio.read_wav(args.out)
            print(f"sent {sent_ms:.0f} ms; heard back: {reply.transcript!r}")
            print(f"saved {answer.duration_ms:.0f} ms of audio to {args.out}")
    except RealtimeError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
