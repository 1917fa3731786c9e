"""Interrupting the model: stop its answer when the user talks, keep only what was heard.

    python examples/interruption.py --local

A stand-in for an audio player "plays" the answer as it arrives and reports its progress;
when the user cuts in, the client cancels the response and truncates the answer at what
was actually played, so the conversation holds what the user heard.
"""

from __future__ import annotations

import argparse
import sys

from _connect import realtime_client

from realtime_sync import RealtimeError, ResponseError, audio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--local", action="store_true", help="use the built-in local server")
    parser.add_argument("--played-ms", type=int, default=480, help="when the user cuts in")
    args = parser.parse_args()
    try:
        # Real-time pacing, so that the answer is still being spoken when we cut in.
        with realtime_client(args.local, server={"audio_pacing": 1.0}) as client:
            client.session.update(session={"output_modalities": ["audio"]})
            client.conversation.item.create(
                item={
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "Tell me about the sea."}],
                }
            )
            handle = client.create_response()
            played = 0.0
            for chunk in handle.audio_stream(timeout=30):  # "play" each chunk as it comes
                played += audio.duration_ms(chunk)
                client.report_playback(played)
                if played >= args.played_ms:
                    break
            truncated = client.expect("conversation.item.truncated")
            cut = client.interrupt()  # the user started talking
            try:
                handle.wait(timeout=30)
            except ResponseError as exc:
                print(f"response {exc.status} ({exc.reason})")
            truncated.wait(timeout=30)
            print(f"{cut.action} {cut.item_id} at {cut.played_ms} ms")
    except RealtimeError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
