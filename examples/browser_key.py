"""A browser talks to the Realtime API directly, with an ephemeral key from this backend.

    pip install 'realtime_sync[examples]'           # Flask
    python examples/browser_key.py --local          # or with OPENAI_API_KEY set
    then open http://127.0.0.1:5000/ and ask

The page's JavaScript opens the WebSocket itself, the browser way: the key travels in the
``openai-insecure-api-key.<key>`` subprotocol, since a browser cannot set headers. That
subprotocol is readable by every script on the page, every extension and anyone with the
developer tools, so it must never carry the real API key. Instead the page asks this
backend (POST /session) for an ephemeral key: the backend, which holds OPENAI_API_KEY,
mints one with ``RealtimeAPI().client_secrets.create()`` and sends back only that key, when
it expires, and where to connect. An ephemeral key

- is not the API key: it only opens Realtime sessions, which start with the configuration
  the backend gave when minting it (model, instructions);
- expires (here after a minute; 10 s to 2 h): a leaked one soon stops opening sessions
  (a session already open goes on until it ends).

So whoever can POST /session can open sessions on your account: in a real app, check your
own login there (and rate-limit it) before minting.

With ``--local`` (or without OPENAI_API_KEY) the built-in local server plays OpenAI: it
mints ``ek_`` keys at ``server.http_base_url`` and opens sessions for them, while its own
key stays in this process.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from flask import Flask, jsonify
from werkzeug.serving import make_server

from realtime_sync import RealtimeAPI, RealtimeError

MODEL = "gpt-realtime-2.1"
# What every browser session starts with: chosen here, by the backend, not by the page.
SESSION = {
    "type": "realtime",
    "model": MODEL,
    "output_modalities": ["text"],
    "instructions": "Answer briefly.",
}
KEY_SECONDS = 60  # the page uses its key at once: a short life is enough
OPENAI_WEBSOCKET = "wss://api.openai.com/v1/realtime"
# The local server's own key (--local): it stands for OPENAI_API_KEY, kept in the backend.
LOCAL_API_KEY = "local-server-key-kept-in-the-backend"

# The whole page. The answer is written with textContent, never innerHTML: it is text.
PAGE = """<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>Realtime from the browser</title>
<form id="ask">
  <input id="question" value="Hello from the browser" size="40">
  <button>Ask</button>
</form>
<div id="answer"></div>
<div id="status">ready</div>
<script>
const answer = document.getElementById('answer');
const status = document.getElementById('status');

document.getElementById('ask').addEventListener('submit', async (submitted) => {
  submitted.preventDefault();
  const question = document.getElementById('question').value;
  answer.textContent = '';
  status.textContent = 'getting a key';
  // A fresh ephemeral key from our backend: {value, expires_at, url}. Never the API key.
  const reply = await fetch('/session', {method: 'POST'});
  if (!reply.ok) {
    status.textContent = `error: the backend answered ${reply.status}`;
    return;
  }
  const {value: key, url} = await reply.json();
  status.textContent = 'connecting';
  let finished = false;
  const ws = new WebSocket(url, ['realtime', `openai-insecure-api-key.${key}`]);
  ws.onopen = () => {
    ws.send(JSON.stringify({
      type: 'conversation.item.create',
      item: {type: 'message', role: 'user', content: [{type: 'input_text', text: question}]},
    }));
    ws.send(JSON.stringify({type: 'response.create'}));
    status.textContent = 'answering';
  };
  ws.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === 'response.output_text.delta') {
      answer.textContent += event.delta;
    } else if (event.type === 'response.done') {
      const outcome = event.response.status;
      finished = true;
      status.textContent = outcome === 'completed' ? 'done' : `response ${outcome}`;
      ws.close();
    } else if (event.type === 'error') {
      finished = true; // what it says is worth more than the close that may follow
      status.textContent = `error: ${event.error.message}`;
    }
  };
  ws.onclose = (closed) => {
    if (!finished) status.textContent = `closed (${closed.code}) before the answer was done`;
  };
});
</script>
</html>
"""


def create_app(api: RealtimeAPI, websocket_url: str) -> Flask:
    """The backend: the page, and POST /session minting one ephemeral key per call."""
    app = Flask(__name__)

    @app.get("/")
    def page() -> Any:
        return PAGE

    @app.post("/session")
    def session() -> Any:
        # Here a real app checks that the request comes from one of its logged-in users.
        try:
            secret = api.client_secrets.create(session=SESSION, expires_in=KEY_SECONDS)
        except RealtimeError as exc:  # refused, rate limited, unreachable...: typed errors
            app.logger.warning("could not mint an ephemeral key: %s", exc)
            return jsonify(error=type(exc).__name__), 502
        # Only what the browser needs: not secret.session, and never the API key.
        return jsonify(
            value=secret.value,
            expires_at=secret.expires_at,
            url=f"{websocket_url}?model={MODEL}",
        )

    return app


@contextlib.contextmanager
def service(local: bool) -> Iterator[tuple[RealtimeAPI, str]]:
    """The HTTP API to mint keys with and the WebSocket URL the browser connects to:
    OpenAI's, or the local server's (which runs until the block ends)."""
    if os.environ.get("OPENAI_API_KEY") and not local:
        yield RealtimeAPI(), OPENAI_WEBSOCKET  # the key comes from OPENAI_API_KEY
        return
    from realtime_sync.testing import LocalRealtimeServer

    # api_key: the local server opens sessions only for its own key and the ek_ keys it
    # minted, as OpenAI does; the browser only ever gets the latter.
    with LocalRealtimeServer(api_key=LOCAL_API_KEY) as server:
        print(f"(no OPENAI_API_KEY or --local: the built-in local server at {server.url})")
        yield RealtimeAPI(LOCAL_API_KEY, base_url=server.http_base_url), server.url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--local", action="store_true", help="use the built-in local server")
    parser.add_argument("--port", type=int, default=5000, help="0 picks a free port")
    args = parser.parse_args()
    with service(args.local) as (api, websocket_url):
        # Flask's development server; in production, a WSGI server (gunicorn, waitress...)
        # behind HTTPS, since the page and its key travel over it.
        server = make_server("127.0.0.1", args.port, create_app(api, websocket_url), threaded=True)
        print(f"listening on http://127.0.0.1:{server.port}/", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
