"""A Flask view that answers a question with one blocking call.

    pip install 'realtime_sync[examples]'           # Flask
    python examples/flask_view.py --local           # or with OPENAI_API_KEY set
    curl -s localhost:5000/ask -H 'Content-Type: application/json' -d '{"question": "Hi?"}'

Flask views are plain blocking functions, which is what this client is for: no event loop
to bridge, just ``send_text()`` with a timeout.

One client per request, not one shared client behind a lock. A Realtime session is one
conversation: sharing it would put every user's questions in the same context (each
answer could draw on other users' words, and the prompt, paid for on every turn, keeps
growing), and a session answers one response at a time, so a lock would make each request
wait for all the others. A new session costs a WebSocket handshake (a few hundred ms from
a data centre), cheap beside the answer itself. For a conversation that spans requests,
keep one client per user session (and close it when the user leaves) instead.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from _connect import client_options
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from realtime_sync import RealtimeClient, RealtimeError, RealtimeTimeoutError


def create_app(options: dict[str, Any]) -> Flask:
    """The app; ``options`` are the RealtimeClient arguments each request uses."""
    app = Flask(__name__)

    @app.post("/ask")
    def ask() -> Any:
        question = (request.get_json(silent=True) or {}).get("question")
        if not isinstance(question, str) or not question.strip():
            return jsonify(error='send {"question": "..."}'), 400
        try:
            # A session of its own for this request (see above for why), ready when the
            # with block is entered, closed when it is left.
            with RealtimeClient(**options) as client:
                reply = client.send_text(
                    question, response={"output_modalities": ["text"]}, timeout=30
                )
        except RealtimeTimeoutError:
            return jsonify(error="the model took too long"), 504
        except RealtimeError as exc:  # refused, dropped, rate limited...: typed errors
            app.logger.warning("realtime request failed: %s", exc)
            return jsonify(error=type(exc).__name__), 502
        return jsonify(answer=reply.text, tokens=reply.usage.total_tokens)

    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--local", action="store_true", help="use the built-in local server")
    parser.add_argument("--port", type=int, default=5000, help="0 picks a free port")
    args = parser.parse_args()
    with client_options(args.local) as options:
        # Flask's development server, threaded: one thread per request. In production run
        # create_app() under a WSGI server (gunicorn, waitress...) with threads or workers.
        server = make_server("127.0.0.1", args.port, create_app(options), threaded=True)
        print(f"listening on http://127.0.0.1:{server.port}/ask", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
