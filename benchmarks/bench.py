"""Benchmarks of realtime_sync against its stack's floor and the official ``openai`` SDK.

    python benchmarks/bench.py [--quick] [--only NAME ...] [--runs N] [--guard] [--stdlib-json]

A loopback Realtime server runs in a process of its own (``_server.py``) and each
measurement in a child process of its own (``_measure.py``); every figure is printed beside
baselines from the same run, as ratios:

- raw: websocket-client ``create_connection`` + ``recv()`` + ``json.loads`` in a loop;
- floor: a bare ``WebSocketApp`` whose ``on_message`` does ``json.loads`` (one
  ``run_forever`` thread per session, pings every 20 s like realtime_sync);
- openai: the official SDK's sync ``client.realtime.connect()``, pointed at the server;
- wire (receive only, not a client): the burst's bytes read off the socket unparsed;
  clients far above it show the server is not the bottleneck.

Measurements (``--only`` names): receive (a), send (b), telephony (c), close (d),
idle (e), long (f); see each function in ``_measure.py``. Receive and send figures are the
best of a few bursts in each run; every figure is the median over runs, every ratio the
median of the runs' ratios (``_report.py``). Results go to ``benchmarks/results/latest.json``.

``--quick`` is the guard: (a) text and audio and (b), three runs each, then (c) with 1 and
20 sessions for 3 s and (d) once, in about 35 s; it exits 1 when a guarded target is
missed by more than the guard's margin (``--guard`` does the same for a full run), 2 when
a measurement failed. Guarded:
receive vs the floor, send vs raw, close() p99, threads per session, no lost events; the rest
(openai speed-up, telephony CPU and p99) is reported only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[1:1] = [str(HERE.parent)]  # measure this checkout of realtime_sync
if "--stdlib-json" in sys.argv[1:]:  # before anything imports realtime_sync (or forks)
    sys.modules["orjson"] = None  # type: ignore[assignment]  # importing it now fails

import _measure  # noqa: E402
import _report as report  # noqa: E402
from _procs import ChildFailed, run_in_child  # noqa: E402
from _report import X  # noqa: E402
from _server import ServerProcess  # noqa: E402

MEASUREMENTS = ("receive", "send", "telephony", "close", "idle", "long")
ALIASES = dict(zip("abcdef", MEASUREMENTS, strict=True))
QUICK = ("receive", "send", "telephony", "close")


def plan(quick: bool) -> dict[str, Any]:
    """Sizes of everything: the full run, or the guard's short one."""
    if quick:
        return {
            "receive": {
                "cases": [("text", 5000), ("audio20", 3000), ("audio100", 1000)],
                "warm": 300,
                "repeat": 5,
                "openai_repeat": 1,
            },
            "send": {
                "cases": [("ulaw20", 5000), ("pcm100", 2000)],
                "warm": 200,
                "repeat": 5,
                "openai_repeat": 1,
            },
            "telephony": {"sessions": [1, 20], "secs": 3.0, "flavours": ["floor", "realtime_sync"]},
            "close": {"cycles": 20, "flavours": ["realtime_sync"]},
            "idle": {"sessions": 20},
            "long": {"secs": 5.0, "rate": 50.0},
            "once": ["telephony", "close", "idle", "long"],
        }
    return {
        "receive": {
            "cases": [("text", 20000), ("audio20", 20000), ("audio100", 5000)],
            "warm": 1000,
            "repeat": 3,
        },
        "send": {"cases": [("ulaw20", 20000), ("pcm100", 10000)], "warm": 500, "repeat": 3},
        "telephony": {
            "sessions": [1, 50, 100],
            "secs": 10.0,
            "flavours": ["floor", "realtime_sync", "openai"],
        },
        "close": {"cycles": 50, "flavours": ["realtime_sync", "floor", "openai"]},
        "idle": {"sessions": 50},
        "long": {"secs": 20.0, "rate": 50.0},
    }


LONG_VARIANTS = {
    "conversation state on (default)": {},
    "conversation_audio=False, max_items=200": {
        "conversation_audio": False,
        "conversation_max_items": 200,
    },
}


def repeats(c: dict[str, Any], flavour: str) -> dict[str, Any]:
    """A case's sizes for one flavour: openai, far slower and never guarded, may burst less."""
    c = dict(c)
    slow = c.pop("openai_repeat", None)
    return c | ({"repeat": slow} if flavour == "openai" and slow else {})


def run_all(
    port: int,
    names: list[str],
    cfg: dict[str, Any],
    runs: int,
    *,
    results: dict[str, Any],
    errors: list[dict[str, str]],
) -> None:
    """Every selected measurement, ``runs`` times; runs are the outer loop, so the flavours
    compared in one ratio were measured close together in time."""

    def child(label: str, fn: Any, timeout: float, **kwargs: Any) -> Any:
        started = time.monotonic()
        print(f"  {label} ...", end="", flush=True)
        try:
            value = run_in_child(fn, {"port": port, **kwargs}, timeout)
        except ChildFailed as exc:
            print(" FAILED")
            errors.append({"measurement": label, "error": str(exc)})
            print("    " + str(exc).replace("\n", "\n    "), file=sys.stderr)
            return None
        print(f" {time.monotonic() - started:.1f} s", flush=True)
        return value

    for run in range(runs):
        print(f"run {run + 1} of {runs}", flush=True)
        # The guard repeats only the short measurements: the median of three runs stands
        # a moment of contention on a shared machine that one run would not.
        names_now = [n for n in names if run == 0 or n not in cfg.get("once", ())]
        if "receive" in names_now:
            c = cfg["receive"]
            for flavour in ("wire", "raw", "floor", "realtime_sync", "openai"):
                value = child(
                    f"receive {flavour}",
                    _measure.receive,
                    300,
                    flavour=flavour,
                    **repeats(c, flavour),
                )
                for kind, us in (value or {}).items():
                    results["receive"].setdefault(kind, {}).setdefault(flavour, []).append(us)
        if "send" in names_now:
            c = cfg["send"]
            for flavour in ("raw", "realtime_sync", "openai"):
                value = child(
                    f"send {flavour}", _measure.send, 300, flavour=flavour, **repeats(c, flavour)
                )
                for kind, us in (value or {}).items():
                    results["send"].setdefault(kind, {}).setdefault(flavour, []).append(us)
        if "telephony" in names_now:
            c = cfg["telephony"]
            for sessions in c["sessions"]:
                for flavour in c["flavours"]:
                    timeout = c["secs"] + 90 + sessions
                    value = child(
                        f"telephony {sessions} x {flavour}",
                        _measure.telephony,
                        timeout,
                        flavour=flavour,
                        sessions=sessions,
                        secs=c["secs"],
                    )
                    if value is not None:
                        bucket = results["telephony"].setdefault(str(sessions), {})
                        bucket.setdefault(flavour, []).append(value)
        if "close" in names_now:
            c = cfg["close"]
            for flavour in c["flavours"]:
                value = child(
                    f"close {flavour}",
                    _measure.close_latency,
                    30 + 8 * c["cycles"],
                    flavour=flavour,
                    cycles=c["cycles"],
                )
                if value is not None:
                    results["close"].setdefault(flavour, []).append(value)
        if "idle" in names_now:
            for flavour in ("floor", "realtime_sync", "openai"):
                value = child(
                    f"idle {flavour}",
                    _measure.idle,
                    180,
                    flavour=flavour,
                    sessions=cfg["idle"]["sessions"],
                )
                if value is not None:
                    results["idle"].setdefault(flavour, []).append(value)
        if "long" in names_now:
            c = cfg["long"]
            for variant, options in LONG_VARIANTS.items():
                value = child(
                    f"long session, {variant}",
                    _measure.long_session,
                    c["secs"] + 120,
                    secs=c["secs"],
                    rate=c["rate"],
                    options=options,
                )
                if value is not None:
                    results["long"].setdefault(variant, []).append(value)


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    if results["receive"]:
        summary["receive"] = report.summarize_times(results["receive"], ["raw", "floor", "openai"])
    if results["send"]:
        summary["send"] = report.summarize_times(results["send"], ["raw", "openai"])
    if results["telephony"]:
        summary["telephony"] = report.summarize_telephony(results["telephony"])
    for name in ("close", "idle", "long"):
        if results[name]:
            summary[name] = report.summarize_flat(results[name])
    return summary


def tables(summary: dict[str, Any], cfg: dict[str, Any], runs: int) -> str:
    of = f"median of {runs} run{'s' if runs > 1 else ''}"
    parts = []
    if "receive" in summary:
        parts.append(
            report.times_table(
                f"(a) receive, socket → user callback, µs per event, blasted "
                f"(best of {cfg['receive']['repeat']} bursts; {of})",
                summary["receive"],
                ["raw", "floor", "openai"],
            )
        )
    if "send" in summary:
        parts.append(
            report.times_table(
                f"(b) send input_audio_buffer.append from raw audio bytes, µs per event "
                f"(best of {cfg['send']['repeat']} bursts; {of})",
                summary["send"],
                ["raw", "openai"],
            )
        )
    if "telephony" in summary:
        c = cfg["telephony"]
        parts.append(
            report.telephony_table(
                f"(c) telephony: N sessions {X} (50 mu-law audio + 50 text deltas/s) for "
                f"{c['secs']:g} s; send → callback latency; CPU of the client process ({of})",
                summary["telephony"],
            )
        )
    if "close" in summary:
        parts.append(report.close_table(f"(d) close() latency ({of})", summary["close"]))
    if "idle" in summary:
        n = cfg["idle"]["sessions"]
        parts.append(report.idle_table(f"(e) {n} idle connected sessions ({of})", summary["idle"]))
    if "long" in summary:
        c = cfg["long"]
        parts.append(
            report.long_table(
                f"(f) realtime_sync, {c['secs']:g} s compressed session: {c['rate']:g} turns/s, "
                f"each 1 s of 24 kHz audio + text ({of})",
                summary["long"],
            )
        )
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="the short guard run (exit 1 on a regression)"
    )
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help=f"some of: {', '.join(MEASUREMENTS)} (or a-f)"
    )
    parser.add_argument(
        "--runs",
        type=int,
        help="runs to take the median of (default 3; --quick repeats receive and send only)",
    )
    parser.add_argument(
        "--guard", action="store_true", help="apply the guard's exit code to a full run"
    )
    parser.add_argument(
        "--stdlib-json",
        action="store_true",
        help="measure realtime_sync as installed without its orjson extra",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args(argv)
    names = [ALIASES.get(n, n) for n in (args.only or (QUICK if args.quick else MEASUREMENTS))]
    unknown = sorted(set(names) - set(MEASUREMENTS))
    if unknown:
        parser.error(f"unknown measurement(s): {', '.join(unknown)}")
    runs = args.runs or 3
    # Ctrl-C and SIGTERM unwind through the finally blocks that end the children (a shell
    # may have started us with SIGINT ignored; a killed parent takes them along anyway).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminated)
    cfg = plan(args.quick)
    # Imported once here, so forked children start with them in place.
    import openai  # noqa: F401

    import realtime_sync

    started = time.monotonic()
    results: dict[str, Any] = {name: {} for name in MEASUREMENTS}
    errors: list[dict[str, str]] = []
    print(
        f"realtime_sync {realtime_sync.__version__} from {Path(realtime_sync.__file__).parent}, "
        f"JSON by {_json_backend()}"
    )
    with ServerProcess() as server:  # ended on the way out, whatever happens
        try:
            run_all(server.port, names, cfg, runs, results=results, errors=errors)
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            return 130
    summary = summarize(results)
    found = report.targets(summary)
    print()
    print(tables(summary, cfg, runs))
    print()
    print(report.targets_text(found))
    elapsed = time.monotonic() - started
    print(f"\ntotal {elapsed:.0f} s")
    meta = {"quick": args.quick, "runs": runs, "measurements": names, "seconds": round(elapsed, 1)}
    document = {
        "meta": meta | environment(),
        "config": cfg,
        "summary": summary,
        "targets": found,
        "errors": errors,
        "runs": results,
    }
    write_json(args.out, document)
    if errors:
        print(f"{len(errors)} measurement(s) failed", file=sys.stderr)
        return 2
    if (args.quick or args.guard) and any(t["status"] == "FAIL" for t in found):
        print("guard: a target is missed by more than its margin", file=sys.stderr)
        return 1
    return 0


def _terminated(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def environment() -> dict[str, Any]:
    import openai
    import websocket
    import websockets

    import realtime_sync

    return {
        "json": _json_backend(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "git": _git(),
        "versions": {
            "realtime_sync": realtime_sync.__version__,
            "websocket-client": websocket.__version__,
            "websockets": websockets.__version__,
            "openai": openai.__version__,
        },
    }


def _json_backend() -> str:
    from realtime_sync import _json

    return "the standard library" if _json._fast_encode is None else "orjson"


def _finite(value: Any) -> Any:
    """NaN (a figure not measured) as null: strict JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _git() -> dict[str, Any]:
    """Which code was measured (read-only git queries; nothing if git is unavailable)."""

    def ask(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=HERE.parent, capture_output=True, text=True, timeout=10, check=False
        )
        return done.stdout.strip()

    try:
        return {"commit": ask("rev-parse", "HEAD"), "dirty": bool(ask("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return {}


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ignore = path.parent / ".gitignore"
    if not ignore.exists():  # results are per machine and run: never committed
        ignore.write_text("*.json\n")
    path.write_text(json.dumps(_finite(document), indent=1, default=str) + "\n")
    print(f"results: {path}")


if __name__ == "__main__":
    sys.exit(main())
