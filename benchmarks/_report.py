"""Summaries, tables and targets of a benchmark run.

Figures are medians over runs. Ratios are medians of per-run ratios: flavours of one run
were measured minutes apart at most, so pairing them cancels much of a noisy machine's
drift, which a ratio of medians would not. A ratio is always this ÷ baseline: below 1 is
better for times, CPU and memory.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

import _protocol as p

X = "\N{MULTIPLICATION SIGN}"  # spelled out: ruff takes the sign for a confusable "x"
GUARD_MARGIN = 1.5  # the guard fails only past target x this: the machines are noisy

CASE_LABELS = {
    "ulaw20": "20 ms mu-law (160 B)",
    "pcm100": "100 ms PCM16 (4800 B)",
}


def case_label(kind: str) -> str:
    if kind in CASE_LABELS:
        return CASE_LABELS[kind]
    _, raw = p.BLAST_KINDS[kind]
    if raw is None:
        event = p.text_delta(p.fake_id("event_", 1), p.fake_id("resp_", 1), p.fake_id("item_", 1))
    else:
        event = p.audio_delta(
            p.fake_id("event_", 1), p.fake_id("resp_", 1), p.fake_id("item_", 1), p.audio_b64(raw)
        )
    name = {"text": "text delta", "audio20": "audio 20 ms", "audio100": "audio 100 ms"}[kind]
    return f"{name} ({len(p.dumps(event)):,} B)"


def median(values: list[float]) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(values) if values else float("nan")


def ratio(runs: dict[str, list[Any]], name: str, base: str, get: Callable[[Any], float]) -> float:
    """Median over runs of ``get(name's figure) / get(base's figure)`` of the same run."""
    pairs = zip(runs.get(name, []), runs.get(base, []), strict=False)
    return median([get(a) / get(b) if get(b) else float("nan") for a, b in pairs])


def fmt(value: float, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [title]
    for row in [header, *rows]:
        cells = [
            str(c).ljust(w) if i < 2 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    return "\n".join(lines)


def _identity(x: float) -> float:
    return x


# --- per measurement: summary (for JSON) and table (for people) -------------------------------


def summarize_times(
    results: dict[str, dict[str, list[float]]], baselines: list[str]
) -> dict[str, Any]:
    """(a) and (b): {case: {flavour: {"us": median, "x<base>": ratio...}}}."""
    out: dict[str, Any] = {}
    for kind, runs in results.items():
        out[kind] = {
            flavour: {"us_per_event": median(values)}
            | {
                f"x_{base}": ratio(runs, flavour, base, _identity)
                for base in baselines
                if base in runs
            }
            for flavour, values in runs.items()
        }
    return out


def times_table(title: str, summary: dict[str, Any], baselines: list[str]) -> str:
    rows = []
    for kind, flavours in summary.items():
        for i, (flavour, figures) in enumerate(flavours.items()):
            rows.append(
                [case_label(kind) if i == 0 else "", flavour, fmt(figures["us_per_event"])]
                + [fmt(figures.get(f"x_{base}"), 2) for base in baselines]
            )
    header = ["case", "client", "µs/event"] + [f"{X}{base}" for base in baselines]
    return table(title, header, rows)


def summarize_telephony(results: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for sessions, runs in results.items():
        out[sessions] = {}
        for flavour, values in runs.items():
            figures = {
                key: median([v[key] for v in values])
                for key in (
                    "p50_ms",
                    "p99_ms",
                    "max_ms",
                    "cpu_us_per_event",
                    "cpu_share",
                    "threads_per_session",
                    "server_max_lag_ms",
                )
            }
            figures["lost"] = max(v["lost"] for v in values)
            figures["unfinished"] = max(v["unfinished"] for v in values)
            figures["received"] = sum(v["received"] for v in values)
            figures["sent"] = sum(v["sent"] for v in values)
            for base in ("floor", "openai"):
                if base in runs:
                    figures[f"cpu_x_{base}"] = ratio(
                        runs, flavour, base, lambda v: v["cpu_us_per_event"]
                    )
                    figures[f"p99_x_{base}"] = ratio(runs, flavour, base, lambda v: v["p99_ms"])
            out[sessions][flavour] = figures
    return out


def telephony_table(title: str, summary: dict[str, Any]) -> str:
    rows = []
    for sessions, flavours in summary.items():
        for i, (flavour, f) in enumerate(flavours.items()):
            rows.append(
                [
                    str(sessions) if i == 0 else "",
                    flavour,
                    fmt(f["p50_ms"]),
                    fmt(f["p99_ms"]),
                    fmt(f["cpu_us_per_event"]),
                    fmt(f.get("cpu_x_floor"), 2),
                    fmt(f.get("p99_x_floor"), 2),
                    fmt(f.get("cpu_x_openai"), 2),
                    f"{f['lost']}"
                    + (f" ({f['unfinished']} unfinished)" if f["unfinished"] else ""),
                    fmt(f["threads_per_session"], 2),
                    fmt(f["server_max_lag_ms"]),
                ]
            )
    header = [
        "sessions",
        "client",
        "p50 ms",
        "p99 ms",
        "CPU µs/event",
        f"CPU{X}floor",
        f"p99{X}floor",
        f"CPU{X}openai",
        "lost",
        "threads/session",
        "server lag ms",
    ]
    return table(title, header, rows)


def summarize_flat(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """(d), (e), (f): per flavour or variant, the median of each numeric figure."""
    out: dict[str, Any] = {}
    for name, values in results.items():
        figures: dict[str, Any] = {}
        for key, first in values[0].items():
            if isinstance(first, (int, float)) and not isinstance(first, bool):
                figures[key] = median([v[key] for v in values])
            else:
                figures[key] = first
        out[name] = figures
    return out


def close_table(title: str, summary: dict[str, Any]) -> str:
    rows = []
    for flavour, f in summary.items():
        note = ""
        if "lingering" in f:
            alive = f"{f['lingering']:.0f} of {f['cycles']:.0f}"
            note = f"run_forever thread still alive 0.3 s later: {alive}"
        rows.append(
            [flavour, "", fmt(f["p50_ms"], 2), fmt(f["p99_ms"], 2), fmt(f["max_ms"], 2), note]
        )
    return table(title, ["client", "", "p50 ms", "p99 ms", "max ms", "note"], rows)


def idle_table(title: str, summary: dict[str, Any]) -> str:
    floor = summary.get("floor", {}).get("rss_kb_per_session")
    rows = [
        [
            flavour,
            "",
            fmt(f["rss_kb_per_session"], 0),
            fmt(f["rss_kb_per_session"] / floor if floor else float("nan"), 2),
            fmt(f["threads_per_session"], 2),
        ]
        for flavour, f in summary.items()
    ]
    return table(title, ["client", "", "RSS KB/session", f"RSS{X}floor", "threads/session"], rows)


def long_table(title: str, summary: dict[str, Any]) -> str:
    rows = [
        [
            variant,
            "",
            fmt(f["turns"], 0),
            fmt(f["simulated_minutes"], 1),
            fmt(f["rss_start_mb"]),
            fmt(f["rss_middle_mb"]),
            fmt(f["rss_end_mb"]),
            fmt(f["items"], 0),
            fmt(f["audio_mb_kept"]),
        ]
        for variant, f in summary.items()
    ]
    header = [
        "variant",
        "",
        "turns",
        "audio min",
        "RSS start MB",
        "middle",
        "end",
        "items",
        "audio kept MB",
    ]
    return table(title, header, rows)


# --- targets ----------------------------------------------------------------------------------


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with its figure, its limit, the guard's limit (None: report
    only) and a status: met, not met (within the guard's margin), or FAIL (past it)."""
    found: list[dict[str, Any]] = []

    def add(name: str, value: float, limit: float, guard: float | None, higher: bool = False):
        if value is None or math.isnan(value):
            status = "not measured"
        elif (value >= limit) if higher else (value <= limit):
            status = "met"
        elif guard is not None and ((value < guard) if higher else (value > guard)):
            status = "FAIL"
        else:
            status = "not met"
        found.append(
            {"target": name, "value": value, "limit": limit, "guard": guard, "status": status}
        )

    for kind, f in summary.get("receive", {}).items():
        rs = f.get("realtime_sync", {})
        label = case_label(kind)
        add(
            f"receive {label}: realtime_sync {X}floor ≤ 1.25",
            rs.get("x_floor"),
            1.25,
            1.25 * GUARD_MARGIN,
        )
        speedup = 1 / rs["x_openai"] if rs.get("x_openai") else float("nan")
        add(
            f"receive {label}: openai ÷ realtime_sync ≥ 3 (report only)",
            speedup,
            3.0,
            None,
            higher=True,
        )
    for kind, f in summary.get("send", {}).items():
        rs = f.get("realtime_sync", {})
        add(
            f"send {case_label(kind)}: realtime_sync {X}raw ≤ 1.2",
            rs.get("x_raw"),
            1.2,
            1.2 * GUARD_MARGIN,
        )
    phone = summary.get("telephony", {})
    if phone:
        top = max(phone, key=int)
        rs = phone[top].get("realtime_sync", {})
        add(
            f"telephony {top} sessions: CPU/event {X}floor ≤ 1.25 (report only)",
            rs.get("cpu_x_floor"),
            1.25,
            None,
        )
        add(
            f"telephony {top} sessions: p99 {X}floor ≤ 1.5 (report only)",
            rs.get("p99_x_floor"),
            1.5,
            None,
        )
        for sessions, flavours in phone.items():
            if "realtime_sync" in flavours:
                # Any loss is a correctness failure: its guard has no margin.
                add(
                    f"telephony {sessions} sessions: realtime_sync events lost = 0",
                    flavours["realtime_sync"]["lost"],
                    0,
                    0,
                )
    threads = summary.get("idle", {}).get("realtime_sync", {}).get("threads_per_session")
    source = "idle sessions"
    if threads is None and phone:
        threads = phone[max(phone, key=int)].get("realtime_sync", {}).get("threads_per_session")
        source = "telephony sessions"
    if threads is not None:
        add(f"threads per session ({source}) ≤ 3", threads, 3, 4)
    close = summary.get("close", {}).get("realtime_sync")
    if close:
        add("close() p99 < 100 ms", close["p99_ms"], 100, 300)
    return found


def targets_text(found: list[dict[str, Any]]) -> str:
    lines = [f"targets (guard: fails past target {X} {GUARD_MARGIN:g}; losses, with no margin)"]
    for t in found:
        guard = "report only" if t["guard"] is None else f"guard {t['guard']:g}"
        lines.append(f"  [{t['status']:>12}] {t['target']}: {fmt(t['value'], 2)} ({guard})")
    return "\n".join(lines)
