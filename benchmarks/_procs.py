"""Child processes of the benchmark: started by fork, bounded in time, always reaped.

The server and every measurement run in processes of their own: a measurement's memory,
threads and CPU time are then its own, and a client that hangs is killed rather than
holding the run up. Children die with the parent (``PR_SET_PDEATHSIG``) and ignore Ctrl-C,
which the parent handles by ending them.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

# fork: children start in milliseconds with the parent's imports; the parent runs no
# threads of its own, so forking it is safe.
CTX = multiprocessing.get_context("fork")
_PR_SET_PDEATHSIG = 1


def become_child() -> None:
    """In a fresh child: die with the parent, leave Ctrl-C to the parent, and die quietly
    when the parent ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler: just end
    with contextlib.suppress(Exception):  # Linux only; elsewhere the parent's kill suffices
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def reap(process: Any, grace: float = 3.0) -> None:
    """End a child: politely, then firmly; always joined, so no zombie is left."""
    if process.is_alive():
        process.terminate()
        process.join(grace)
    if process.is_alive():
        process.kill()
    process.join(grace)


class ChildFailed(RuntimeError):
    """A measurement raised, timed out or died in its process."""


def _child_main(send: Connection, fn: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    become_child()
    try:
        result = ("ok", fn(**kwargs))
    except BaseException:
        result = ("error", traceback.format_exc())
    send.send(result)
    send.close()


def run_in_child(fn: Callable[..., Any], kwargs: dict[str, Any], timeout: float) -> Any:
    """``fn(**kwargs)`` in a forked child; its return value, or :class:`ChildFailed`."""
    receive, send = CTX.Pipe(duplex=False)
    process = CTX.Process(target=_child_main, args=(send, fn, kwargs), daemon=True)
    process.start()
    send.close()  # ours: so a child that dies without answering reads as EOF
    answered = False
    try:
        if not receive.poll(timeout):
            raise ChildFailed(f"{fn.__name__} timed out after {timeout:.0f} s")
        try:
            status, value = receive.recv()
        except EOFError:
            raise ChildFailed(f"{fn.__name__} died (exit code {process.exitcode})") from None
        answered = True
        if status != "ok":
            raise ChildFailed(f"{fn.__name__} failed:\n{value}")
        return value
    finally:
        receive.close()
        if answered:  # it exits by itself once it has answered (client threads are daemons)
            process.join(5.0)
        reap(process)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
