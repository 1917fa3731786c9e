"""The server commands: ``serve`` (simulated sessions) and ``replay`` (a recorded session).

Both start :class:`~realtime_sync.testing.LocalRealtimeServer`, print its URL and key on
their first lines (flushed, for the program that started them to read), and run until
Ctrl-C or SIGTERM, then stop it and exit 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import signal
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._cli_common import (
    EXIT_FAILURE,
    command,
    count,
    local_server_class,
    port,
    positive,
    seconds,
    whole,
)
from ._endpoints import DEFAULT_MODELS, _is_loopback
from ._secrets import redact

if TYPE_CHECKING:
    from ._cli_common import Subcommands
    from .testing import LocalRealtimeServer

__all__ = ["add_replay", "add_serve"]

_LOG_LINE_CHARS = 200
_BETA_API_VERSION = "2024-10-01-preview"
# What the error of a failed opening says, by close code (as real servers send them).
_OPENING_ERRORS: dict[int, dict[str, Any]] = {
    3000: {"code": "invalid_api_key", "message": "Incorrect API key provided."},
    4000: {"code": "model_not_found", "message": "The model does not exist."},
}
_SERVER_ERROR = {"type": "server_error", "code": "server_error", "message": "Injected failure."}

SERVE_DESCRIPTION = """\
Run the local Realtime server for programs in any language. Its first lines are

  url: ws://127.0.0.1:PORT/v1/realtime     (clients add ?model=...)
  key: KEY                                  (send it as 'Authorization: Bearer KEY')

then it serves until Ctrl-C or SIGTERM. Sessions answer every client event of both
dialects (text, speech, function calls) as the realtime_sync.testing documentation
describes; the fault options make it misbehave, to test how a client copes.
"""

REPLAY_DESCRIPTION = """\
Serve a recorded session: a file written by RealtimeClient.record() (or 'chat --record'),
or a server-side trace with one server event per line. Every client that connects gets the
server's side of the recording, as recorded: each turn once the client sends the event the
recorded server answered (its n-th response.create releases what followed the recorded
n-th one), at the recorded pace (--speed, --fast). Prints its URL and key like 'serve'.
"""


# Options


def _add_listen_options(parser: argparse.ArgumentParser) -> None:
    listen = parser.add_argument_group("listening")
    listen.add_argument("--host", default="127.0.0.1", help="interface (default: 127.0.0.1)")
    listen.add_argument("--port", type=port, default=0, help="TCP port (default: 0, any free one)")
    listen.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host that is not loopback (the key then travels in clear text)",
    )
    listen.add_argument("--key", help="the API key clients must send (default: a new random one)")
    listen.add_argument(
        "--dialect",
        choices=("ga", "beta"),
        default="ga",
        help="the URL printed: ga, OpenAI's /v1/realtime (beta for clients that send "
        "'OpenAI-Beta: realtime=v1'); beta, Azure's api-version path, beta for every client",
    )
    listen.add_argument(
        "--any-model",
        action="store_true",
        help="accept any model name (default: the realtime models the openai package lists)",
    )
    listen.add_argument("--log-events", action="store_true", help="print what clients send")


def add_serve(commands: Subcommands) -> None:
    serve = command(
        commands,
        "serve",
        help="run the local Realtime server for other programs",
        description=SERVE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_listen_options(serve)
    answers = serve.add_argument_group("answers")
    answers.add_argument(
        "--reply", metavar="TEXT", help='the text of every answer (default: "You said: ...")'
    )
    answers.add_argument(
        "--delta-chunks",
        type=count,
        default=4,
        metavar="N",
        help="text deltas per answer (default: 4)",
    )
    answers.add_argument(
        "--delta-interval",
        type=seconds,
        default=0.0,
        metavar="SECONDS",
        help="seconds before each delta",
    )
    answers.add_argument(
        "--pacing",
        type=seconds,
        metavar="FACTOR",
        help="spoken audio's speed relative to real time (1.0 real time; default: at once)",
    )
    answers.add_argument(
        "--late-transcripts",
        action="store_true",
        help="send input audio transcriptions once a response is in progress",
    )
    faults = serve.add_argument_group(
        "faults", "Counted faults apply to every attempt or response, or the next --fault-times."
    )
    faults.add_argument(
        "--reject-handshake",
        type=int,
        metavar="STATUS",
        help="answer upgrades with this HTTP status, 300 to 599 (429, 503...)",
    )
    faults.add_argument(
        "--retry-after", type=seconds, metavar="SECONDS", help="with --reject-handshake"
    )
    faults.add_argument(
        "--fail-after-accept",
        type=int,
        metavar="CODE",
        help="upgrade, send an error, close with CODE (3000 bad key, 4000 bad model...)",
    )
    faults.add_argument(
        "--hang-handshakes", action="store_true", help="never answer upgrade requests"
    )
    faults.add_argument(
        "--drop-during-response",
        type=whole,
        metavar="N",
        help="cut the connection (no close frame) after a response's N-th delta",
    )
    faults.add_argument("--fault-times", type=count, metavar="N", help="see above")
    faults.add_argument(
        "--session-lifetime",
        type=positive,
        metavar="SECONDS",
        help="end sessions after SECONDS (session_expired, close 1001)",
    )
    faults.add_argument("--no-pongs", action="store_true", help="never answer pings")
    faults.add_argument(
        "--beta-shutdown",
        action="store_true",
        help="refuse the beta dialect on /v1/realtime, as api.openai.com does",
    )
    serve.set_defaults(run=_run_serve)


def add_replay(commands: Subcommands) -> None:
    replay = command(
        commands,
        "replay",
        help="serve a recorded session to connecting clients",
        description=REPLAY_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("file", metavar="FILE", help="a JSONL recording or server-side trace")
    timing = replay.add_mutually_exclusive_group()
    timing.add_argument("--fast", action="store_true", help="play as fast as possible")
    timing.add_argument(
        "--speed",
        type=positive,
        default=1.0,
        metavar="FACTOR",
        help="play FACTOR times the recorded speed (default: 1.0)",
    )
    _add_listen_options(replay)
    replay.set_defaults(run=_run_replay)


# Running


def _run_serve(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.command_parser
    if args.retry_after is not None and args.reject_handshake is None:
        parser.error("--retry-after goes with --reject-handshake")
    status = args.reject_handshake
    if status is not None and not 300 <= status <= 599:  # 2xx would be a success, not a refusal
        parser.error(
            f"--reject-handshake: HTTP status {status} does not refuse an upgrade (300 to 599)"
        )
    counted = (args.reject_handshake, args.fail_after_accept, args.drop_during_response)
    if args.fault_times is not None and counted == (None, None, None) and not args.hang_handshakes:
        parser.error("--fault-times goes with a counted fault")
    options = {
        "reply": args.reply,
        "delta_chunks": args.delta_chunks,
        "delta_interval": args.delta_interval,
        "audio_pacing": args.pacing,
        "late_transcripts": args.late_transcripts,
        "session_lifetime": args.session_lifetime,
        "emulate_beta_shutdown": args.beta_shutdown,
    }
    try:
        server = _server(args, **options)
        _inject_faults(server, args)
    except ValueError as exc:  # a status or close code no server may send
        parser.error(str(exc))
    return _serve_until_stopped(server, args, [])


def _run_replay(args: argparse.Namespace) -> int:
    from .testing import Playback, PlaybackError

    try:
        playback = Playback.load(args.file, speed=None if args.fast else args.speed)
    except (OSError, PlaybackError) as exc:
        args.command_parser.error(f"cannot play {args.file}: {exc}")
    pace = "as fast as possible" if args.fast else f"at {args.speed:g} times the recorded pace"
    turns = len(playback.turns)
    note = (
        f"playing {args.file}: {len(playback.event_types)} server events in {turns} "
        f"turn{'s' * (turns != 1)} ({playback.duration:g} s recorded), {pace}"
    )
    return _serve_until_stopped(_server(args, playback=playback), args, [note])


def _server(args: argparse.Namespace, **options: Any) -> LocalRealtimeServer:
    if not (args.allow_remote or _is_loopback(args.host)):
        args.command_parser.error(
            f"refusing to listen on {args.host!r}, which is not loopback: clients would send "
            "their key in clear text (pass --allow-remote to do it anyway)"
        )
    if args.key is not None and not args.key.strip():
        args.command_parser.error("--key must not be empty")
    args.key = args.key or f"rs-local-{secrets.token_hex(12)}"
    if args.any_model:
        options["models"] = None
    server_class = local_server_class()
    return server_class(args.key, host=args.host, port=args.port, **options)


def _inject_faults(server: LocalRealtimeServer, args: argparse.Namespace) -> None:
    times = args.fault_times
    if args.reject_handshake is not None:
        retry = {"Retry-After": f"{args.retry_after:g}"} if args.retry_after is not None else None
        server.reject_handshake(args.reject_handshake, headers=retry, times=times)
    if args.fail_after_accept is not None:
        error = _OPENING_ERRORS.get(args.fail_after_accept, _SERVER_ERROR)
        server.fail_after_accept(args.fail_after_accept, error, times=times)
    if args.hang_handshakes:
        server.hang_handshakes(times=times)
    if args.drop_during_response is not None:
        server.drop_during_response(args.drop_during_response, times=times)
    if args.no_pongs:
        server.answer_pings(False)


def _serve_until_stopped(
    server: LocalRealtimeServer, args: argparse.Namespace, notes: list[str]
) -> int:
    try:
        server.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    with _stop_on_signals(server):
        for line in _announcement(server, args) + notes:
            print(line, flush=True)
        print("serving until Ctrl-C (or SIGTERM)", flush=True)
        if args.log_events:
            _log_events(server)
        else:
            _idle()
    return 0


def _announcement(server: LocalRealtimeServer, args: argparse.Namespace) -> list[str]:
    if args.dialect == "beta":
        deployment = DEFAULT_MODELS["beta"]
        query = f"api-version={_BETA_API_VERSION}&deployment={deployment}"
        url = server.url.removesuffix("/v1/realtime") + f"/openai/realtime?{query}"
        return [
            f"url: {url}",
            f"key: {args.key}",
            "dialect: beta, for every connection to this URL (Azure's api-version path)",
        ]
    base = server.azure_endpoint + "/v1"
    return [
        f"url: {server.url}",
        f"key: {args.key}",
        f"base url: {base} (OPENAI_BASE_URL; the openai package's websocket_base_url: "
        f"{server.url.removesuffix('/realtime')})",
        "dialect: ga (beta for clients that send 'OpenAI-Beta: realtime=v1')",
    ]


@contextlib.contextmanager
def _stop_on_signals(server: LocalRealtimeServer) -> Iterator[None]:
    """Run until Ctrl-C or SIGTERM (both raise KeyboardInterrupt here), then stop the
    server with both ignored, so that a second signal cannot cut the shutdown short."""
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.getsignal(signum) for signum in handled}
    for signum in handled:  # SIGINT too: a shell starts background jobs with it ignored
        signal.signal(signum, signal.default_int_handler)
    try:
        yield
    except KeyboardInterrupt:
        pass
    finally:
        for signum in handled:
            signal.signal(signum, signal.SIG_IGN)
        server.stop()
        for signum, handler in previous.items():
            if handler is not None:  # None: not set from Python; nothing to give back
                signal.signal(signum, handler)
    print("stopped", flush=True)


def _idle() -> None:
    while True:
        time.sleep(3600)  # a signal ends it


def _log_events(server: LocalRealtimeServer) -> None:
    """Print each client event as it arrives (all connections, in arrival order)."""
    shown = 0
    while True:
        received = server.received
        for event in received[shown:]:
            print(_event_line(event), flush=True)
        shown = len(received)
        time.sleep(0.1)


def _event_line(event: dict[str, Any]) -> str:
    fields = {name: value for name, value in event.items() if name != "type"}
    line = redact(f"client event: {event.get('type')} {json.dumps(fields, ensure_ascii=False)}")
    return line if len(line) <= _LOG_LINE_CHARS else line[: _LOG_LINE_CHARS - 3] + "..."
