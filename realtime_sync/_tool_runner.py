"""Running the model's function calls: registered tools on threads of their own, never on
the dispatcher thread, their outputs sent back, and one ``response.create`` per batch.

A reducer of the dispatcher. When a ``response.done`` carries function calls and a tool is
registered for any of them, the batch runs: every call at once on a daemon thread of its
own (a tool that hangs holds nothing else up), each within its tool's timeout from the
batch's start (an exception, a timeout or an unknown name becomes an error output the
model sees), then
every ``function_call_output`` in call order, then exactly one ``response.create``, through
the turns so that it waits for any response in progress. The tool list of the session is
kept in sync with the registry: at ``session.created`` and whenever the registry changes.
Tools the session has from elsewhere (an accepted call's configuration, an MCP server, the
app's own ``session.update``) are kept beside the registered ones.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Mapping, Sequence
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

    def abandon(self, response_id: str | None, error: BaseException) -> None: ...


class ToolRunner:
    """Runs registered tools for the model and answers it (see the module description)."""

    def __init__(
        self,
        client: _Client,
        registry: ToolRegistry,
        followups: _Followups,
        *,
        automatic: bool = True,
    ) -> None:
        self._client = client
        self._registry = registry
        self._followups = followups
        self.automatic = automatic
        """Whether calls are run and answered here (False: the app answers them)."""
        self._decisions: dict[str, bool] = {}
        # The session's tools as the server last reported them, and the names of the
        # functions this runner ever put there (those follow the registry; others stay).
        self._session_tools: list[Any] = []
        self._sent_names: set[str] = set()
        registry.subscribe(self._tools_changed)

    def will_answer(self, response: Response) -> bool:
        """Whether this response's function calls will be run and answered here: decided
        once per response (the turns ask first, then the runner acts on the same answer);
        only a completed response's calls, whose arguments are whole."""
        decided = self._decisions.get(response.id or "")
        if decided is None:
            decided = (
                self.automatic
                and response.status == "completed"
                and any(self._registry.get(c.name or "") for c in _calls(response))
            )
            self._decisions = {response.id or "": decided}  # only the latest is asked for
        return decided

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
        elif kind is SessionEvent:
            tools = event.session.raw.get("tools")
            self._session_tools = list(tools) if isinstance(tools, Sequence) else []
            if event.type == "session.created" and len(self._registry):
                self._sync_tools()
        return event

    # --- the batch thread ---------------------------------------------------------------------

    def _run_batch(self, response_id: str | None, calls: list[ConversationItem]) -> None:
        started = time.monotonic()
        running = []
        for call in calls:
            tool = self._registry.get(call.name or "")
            running.append((call, tool, _start(tool, call) if tool else None))
        try:
            for call, tool, future in running:
                self._client.send(
                    {
                        "type": "conversation.item.create",
                        "item": {
                            "type": "function_call_output",
                            "call_id": call.call_id,
                            "output": _outcome(call, tool, future, started),
                        },
                    }
                )
            self._followups.follow_up(response_id)
        except Exception as exc:  # the session ended meanwhile: nothing to answer
            logger.warning("could not answer the model's function calls", exc_info=True)
            self._followups.abandon(response_id, exc)

    # --- keeping the session's tool list in sync ----------------------------------------------

    def _tools_changed(self) -> None:
        if self._client.connected:
            self._sync_tools()

    def _sync_tools(self) -> None:
        ours = self._registry.definitions(self._client.dialect)
        replaced = self._sent_names | {tool["name"] for tool in ours}
        others = [
            tool
            for tool in self._session_tools
            if not (
                isinstance(tool, Mapping)
                and tool.get("type") == "function"
                and tool.get("name") in replaced
            )
        ]
        self._sent_names = replaced
        session = session_for_dialect({"tools": others + ours}, self._client.dialect)
        try:
            self._client.send({"type": "session.update", "session": session})
        except Exception:  # not connected any more: the next session.created syncs them
            logger.debug("tool list not sent", exc_info=True)


def _calls(response: Response) -> list[ConversationItem]:
    return [item for item in response.output or () if item.type == "function_call"]


def _start(tool: Tool, call: ConversationItem) -> concurrent.futures.Future[str]:
    """Run one call on a daemon thread of its own; its result, or exception, in a future."""
    future: concurrent.futures.Future[str] = concurrent.futures.Future()

    def run() -> None:
        try:
            future.set_result(tool.call(call.arguments or ""))
        except BaseException as exc:  # SystemExit too: the model is told, nothing dies
            future.set_exception(exc)

    threading.Thread(target=run, name=f"realtime_sync-tool-{tool.name}", daemon=True).start()
    return future


def _outcome(
    call: ConversationItem,
    tool: Tool | None,
    future: concurrent.futures.Future[str] | None,
    started: float,
) -> str:
    """The output the model sees for one call; its timeout runs from the batch's start."""
    if tool is None or future is None:
        return error_output(LookupError(f"no tool named {call.name!r}"))
    remaining = None if tool.timeout is None else started + tool.timeout - time.monotonic()
    try:
        return future.result(timeout=wait_seconds(remaining))
    except concurrent.futures.TimeoutError:
        return error_output(TimeoutError(f"{tool.name} did not finish within {tool.timeout} s"))
    except BaseException as exc:  # the model sees what went wrong, and the session goes on
        logger.warning("tool %s raised; the model is told", tool.name, exc_info=exc)
        return error_output(exc)
