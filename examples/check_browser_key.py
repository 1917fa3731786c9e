"""The browser example in headless Chromium: the page gets an ephemeral key from the
backend and holds a text turn with it, and the real key never reaches the browser.

Not collected by ``python -m pytest`` (its name does not start with ``test_``): Chromium is
a Debian package, not a pip one. Run it by name once Chromium is installed, as CI does::

    apt-get install chromium && python -m pytest examples/check_browser_key.py
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import websocket
from test_examples import served

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    """Headless Chromium (Debian's package), driven over the DevTools protocol: one tab,
    JavaScript evaluated in it. Every wait has a deadline."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None
        self.log = profile.parent / "chromium.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    CHROMIUM,
                    "--headless",
                    "--no-sandbox",  # as root in a container, and no setuid helper
                    "--disable-gpu",
                    "--disable-dev-shm-usage",  # a container's /dev/shm may be tiny
                    "--disable-quic",
                    "--no-first-run",
                    "--no-proxy-server",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    f"--user-data-dir={profile}",
                    "--remote-debugging-port=0",  # the port it picks goes in DevToolsActivePort
                    "about:blank",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group: its helpers end with it
            )
        self.next_id = 0
        try:
            port = self._devtools_port(profile / "DevToolsActivePort")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                tab = next(target for target in json.load(r) if target["type"] == "page")
            self.devtools = websocket.create_connection(
                tab["webSocketDebuggerUrl"], timeout=10, suppress_origin=True
            )
        except BaseException:
            self.kill()
            raise

    def _devtools_port(self, path: Path, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while not (path.exists() and len(lines := path.read_text().split()) >= 2):
            assert self.process.poll() is None, f"chromium ended: {self.output()}"
            assert time.monotonic() < deadline, f"no DevTools port: {self.output()}"
            time.sleep(0.05)
        return int(lines[0])

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]

    def call(self, method: str, **params: object) -> dict[str, Any]:
        """One DevTools command and its result (the events in between are not asked for)."""
        self.next_id += 1
        self.devtools.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:  # each recv() times out after 10 s
            message = json.loads(self.devtools.recv())
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message["result"]  # type: ignore[no-any-return]

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the tab."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        """The first truthy value of ``expression``, polled."""
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(expression)):
            assert time.monotonic() < deadline, f"never true: {expression}"
            time.sleep(0.05)
        return value

    def kill(self) -> None:
        """End Chromium and every process it started."""
        if getattr(self, "devtools", None) is not None:
            self.devtools.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@contextlib.contextmanager
def chromium(tmp_path: Path) -> Iterator[Chromium]:
    assert CHROMIUM is not None, (
        "this test drives Debian's chromium, which pip cannot install: apt-get install chromium"
    )
    browser = Chromium(tmp_path / "profile")
    try:
        yield browser
    finally:
        browser.kill()


def test_browser_key_the_page_talks_to_the_service_with_an_ephemeral_key(tmp_path: Path) -> None:
    from browser_key import LOCAL_API_KEY  # the local server's own key: the backend's secret

    with chromium(tmp_path) as browser, served("browser_key.py") as app:
        # What the backend gives the browser: an ephemeral key, its expiry, where to go.
        request = urllib.request.Request(app.address + "session", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            minted = json.load(response)
        assert sorted(minted) == ["expires_at", "url", "value"]
        assert minted["value"].startswith("ek_")
        assert minted["url"].startswith("ws://127.0.0.1:")
        assert minted["expires_at"] > time.time()

        # A user opens the page and asks.
        browser.call("Page.navigate", url=app.address)
        browser.wait_for("document.readyState === 'complete' && !!document.getElementById('ask')")
        question = "Hello from Chromium"
        browser.evaluate(
            f"document.getElementById('question').value = {json.dumps(question)};"
            "document.querySelector('#ask button').click()"
        )
        status = browser.wait_for(
            "['done', 'error', 'closed', 'response'].some("
            "word => document.getElementById('status').textContent.startsWith(word))"
            " && document.getElementById('status').textContent"
        )
        assert status == "done", browser.evaluate("document.body.innerText")
        answer = browser.evaluate("document.getElementById('answer').textContent")
        assert answer == f"You said: {question}"

        # The real key never reached the browser: not in the page as served, nor as it is now.
        with urllib.request.urlopen(app.address, timeout=30) as response:
            served_page = response.read().decode()
        assert "new WebSocket(url, ['realtime', `openai-insecure-api-key.${key}`])" in served_page
        assert LOCAL_API_KEY not in served_page
        assert LOCAL_API_KEY not in browser.evaluate("document.documentElement.outerHTML")
        assert LOCAL_API_KEY not in json.dumps(minted)
    assert "Traceback" not in "\n".join(app.errors)
