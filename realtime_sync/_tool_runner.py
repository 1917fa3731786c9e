"""Running the model's function calls: registered tools on a worker pool, never on the
dispatcher thread, their outputs sent back, and one ``response.create`` per batch.

A reducer of the dispatcher. When a ``response.done`` carries function calls and a tool is
registered for any of them, the batch runs: each call on the pool with its tool's timeout
(an exception, a timeout or an unknown name becomes an error output the model sees), then
every ``function_call_output`` in call order, then exactly one ``response.create``, through
the turns so that it waits for any response in progress. The tool list of the session is
kept in sync with the registry: at ``session.created`` and whenever the registry changes.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from ._dialects import session_for_dialect
from ._endpoints import Dialect
from ._objects import ConversationItem, Response
from ._server_events import ResponseEvent, SessionEvent
from ._timeouts import wait_seconds
from ._tools import Tool, ToolRegistry, error_output

__all__ = ["ToolRunner"]

logger = logging.getLogger("realtime_sync")


class _Client(Protocol):
    @property
    def dialect(self) -> Dialect: ...

    @property
    def connected(self) -> bool: ...

    def send(self, event: Mapping[str, Any]) -> str: ...


class _Followups(Protocol):
    def follow_up(self, response_id: str | None) -> None: ...


class ToolRunner:
    """Runs registered tools for the model and answers it (see the module description)."""

    def __init__(
        self,
        client: _Client,
        registry: ToolRegistry,
        followups: _Followups,
        *,
        automatic: bool = True,
        max_workers: int = 4,
    ) -> None:
        self._client = client
        self._registry = registry
        self._followups = followups
        self.automatic = automatic
        """Whether calls are run and answered here (False: the app answers them)."""
        self._max_workers = max_workers
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        registry.subscribe(self._tools_changed)

    def will_answer(self, response: Response) -> bool:
        """Whether this response's function calls will be run and answered here."""
        return self.automatic and any(self._registry.get(c.name or "") for c in _calls(response))

    def receive(self, event: Any) -> Any:
        kind = type(event)
        if kind is ResponseEvent and event.type == "response.done":
            if self.will_answer(event.response):
                calls = _calls(event.response)
                threading.Thread(
                    target=self._run_batch,
                    args=(event.response.id, calls),
                    name="realtime_sync-tools",
                    daemon=True,
                ).start()
        elif kind is SessionEvent and event.type == "session.created" and len(self._registry):
            self._sync_tools()
        return event

    def close(self) -> None:
        """Stop the pool; calls still running finish on their own threads."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    # --- the batch thread ---------------------------------------------------------------------

    def _run_batch(self, response_id: str | None, calls: list[ConversationItem]) -> None:
        pool = self._worker_pool()
        futures = []
        for call in calls:
            tool = self._registry.get(call.name or "")
            future = pool.submit(tool.call, call.arguments or "") if tool else None
            futures.append((call, tool, future))
        try:
            for call, tool, future in futures:
                self._client.send(
                    {
                        "type": "conversation.item.create",
                        "item": {
                            "type": "function_call_output",
                            "call_id": call.call_id,
                            "output": _outcome(call, tool, future),
                        },
                    }
                )
            self._followups.follow_up(response_id)
        except Exception:  # the session ended meanwhile: nothing to answer
            logger.warning("could not answer the model's function calls", exc_info=True)

    def _worker_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    self._max_workers, thread_name_prefix="realtime_sync-tool"
                )
            return self._pool

    # --- keeping the session's tool list in sync ----------------------------------------------

    def _tools_changed(self) -> None:
        if self._client.connected:
            self._sync_tools()

    def _sync_tools(self) -> None:
        session = session_for_dialect(
            {"tools": self._registry.definitions(self._client.dialect)}, self._client.dialect
        )
        try:
            self._client.send({"type": "session.update", "session": session})
        except Exception:  # not connected any more: the next session.created syncs them
            logger.debug("tool list not sent", exc_info=True)


def _calls(response: Response) -> list[ConversationItem]:
    return [item for item in response.output or () if item.type == "function_call"]


def _outcome(
    call: ConversationItem, tool: Tool | None, future: concurrent.futures.Future[str] | None
) -> str:
    """The output the model sees for one call."""
    if tool is None or future is None:
        return error_output(LookupError(f"no tool named {call.name!r}"))
    try:
        return future.result(timeout=wait_seconds(tool.timeout))
    except concurrent.futures.TimeoutError:
        return error_output(TimeoutError(f"{tool.name} did not finish within {tool.timeout} s"))
    except BaseException as exc:  # the model sees what went wrong, and the session goes on
        logger.warning("tool %s raised; the model is told", tool.name, exc_info=exc)
        return error_output(exc)
