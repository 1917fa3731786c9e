"""Answer phone calls: the ``realtime.call.incoming`` webhook, accept, join, a tool, hang up.

    pip install 'realtime_sync[examples]'           # Flask
    python examples/incoming_call.py --local        # rings itself, offline
    OPENAI_API_KEY=... OPENAI_WEBHOOK_SECRET=whsec_... python examples/incoming_call.py

When someone dials your SIP number, OpenAI POSTs a signed ``realtime.call.incoming``
webhook to your endpoint (here http://<host>:8000/webhook; set it in the project's webhook
settings). This app verifies it, answers 200 at once, and handles the call on a thread of
its own: accepts it with a session (instructions and a tool), joins it by ``call_id`` to run
the tool when the model calls it, and hangs up. The caller's audio never passes through
here: it flows between the phone network and OpenAI.

With ``--local`` (or without OPENAI_API_KEY) the built-in local server plays OpenAI: the
example rings it, POSTs the webhook it signed to the app (and a tampered copy, refused),
and ends once the call is over.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, request
from werkzeug.serving import make_server

from realtime_sync import APIError, RealtimeAPI, RealtimeClient
from realtime_sync.webhooks import CallIncoming, WebhookVerificationError, unwrap

ORDERS = {"A1234": {"status": "shipped", "arrives": "Thursday"}}

# Given at accept, not only once joined: the caller may speak before this app has joined.
SESSION = {
    "type": "realtime",
    "model": "gpt-realtime-2.1",
    "instructions": "You answer the phone for an online shop. Look orders up with "
    "lookup_order, tell the caller what you found, and be brief.",
    "tools": [
        {
            "type": "function",
            "name": "lookup_order",
            "description": "Where a customer's order is.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string", "description": 'e.g. "A1234"'}},
                "required": ["order_id"],
            },
        }
    ],
}
MAX_CALL_SECONDS = 600
_output = threading.Lock()


def log(line: str) -> None:
    """Print a line whole: the calls' threads, the web server's and the main one all print."""
    with _output:
        print(line, flush=True)


def answer_call(
    call_id: str, api: RealtimeAPI, connection: Mapping[str, Any], caller_says: str | None
) -> None:
    """Accept the call, steer it until the caller is done, hang up."""
    api.calls.accept(call_id, session=SESSION)
    log(f"call {call_id}: accepted")
    try:
        with RealtimeClient(call_id=call_id, **connection) as client:
            tools = [tool.name for tool in client.session.current.tools or ()]
            log(f"call {call_id}: joined; the model has the tools {tools}")

            # Registering is what makes this client run it when the model calls it. The
            # client also sends the session its registry as the tool list, which replaces
            # the list accept gave: register every tool declared there.
            @client.tool
            def lookup_order(order_id: str) -> dict[str, str]:
                """Where a customer's order is.

                Args:
                    order_id: e.g. "A1234".
                """
                found = ORDERS.get(order_id.upper(), {"status": "not found"})
                log(f"tool lookup_order(order_id={order_id!r}) -> {found}")
                return found

            @client.on("client.conversation.item_completed")
            def show(event: Any) -> None:
                said = event.item.text or event.item.transcript  # typed or spoken
                if event.item.type == "message" and said:
                    who = "caller" if event.item.role == "user" else "assistant"
                    log(f"{who}: {said}")

            if caller_says is None:
                # A real line: the model greets the caller, then server VAD answers them
                # (and tools run) without this thread. The call is over when they hang up:
                # the service then closes this session.
                ended = threading.Event()
                client.on("client.closed", lambda _: ended.set())
                client.create_response()
                ended.wait(MAX_CALL_SECONDS)
            else:
                # The local server has nobody on the line and hears no audio: the caller's
                # question goes in as text instead. It calls a tool when the text says
                # "call <name> <json>"; a real model decides from what it hears.
                client.send_text(caller_says, timeout=30)
    finally:
        try:
            api.calls.hangup(call_id)
            log(f"call {call_id}: hung up")
        except APIError as exc:  # the caller hung up first
            log(f"call {call_id}: already over ({exc.code})")


def create_app(secret: str, answer: Callable[[str], None]) -> Flask:
    """The webhook endpoint; ``answer(call_id)`` runs on a thread of its own per call."""
    app = Flask(__name__)
    app.extensions["calls"] = []  # the calls' threads, to wait for them

    @app.post("/webhook")
    def webhook() -> Any:
        try:  # the raw body: the signature covers its bytes, not a parsed copy
            event = unwrap(request.get_data(), request.headers, secret=secret)
        except WebhookVerificationError as exc:
            log(f"webhook refused: {exc}")
            return {"error": "invalid signature"}, 400
        log(f"webhook verified: {event.type} {event.id}")
        if isinstance(event, CallIncoming):
            # Answer now, accept on a thread: a webhook left waiting is sent again, and the
            # caller hears ringing until the accept. (A redelivery has the same event.id.)
            call = threading.Thread(target=answer, args=(event.call_id,), name=event.call_id)
            app.extensions["calls"].append(call)
            call.start()
        return "", 200

    return app


def post(url: str, body: bytes, headers: Mapping[str, str]) -> int:
    """POST as the service would; the HTTP status."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, dict(headers)), timeout=10):
            return 200
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--local", action="store_true", help="use the built-in local server")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    if args.local or not os.environ.get("OPENAI_API_KEY"):
        return ring_local(args.port)
    secret = os.environ.get("OPENAI_WEBHOOK_SECRET")
    if not secret:
        print("set OPENAI_WEBHOOK_SECRET to the endpoint's whsec_... secret", file=sys.stderr)
        return 2
    api = RealtimeAPI()  # OPENAI_API_KEY
    app = create_app(secret, lambda call_id: answer_call(call_id, api, {}, None))
    # Flask's development server; in production, a WSGI server (gunicorn, waitress...).
    server = make_server("0.0.0.0", args.port, app, threaded=True)  # reachable by OpenAI
    log(f"listening on http://0.0.0.0:{server.port}/webhook")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def ring_local(port: int) -> int:
    """Be OpenAI with the local server: ring, send the webhook, wait for the call to end."""
    from realtime_sync.testing import LocalRealtimeServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # we print each request ourselves
    with LocalRealtimeServer() as service:
        log(f"(the built-in local server at {service.url})")
        api = RealtimeAPI("local", base_url=service.http_base_url)
        connection = {"api_key": "local", "url": service.url}
        question = 'call lookup_order {"order_id": "A1234"}'
        app = create_app(
            service.calls.webhook_secret,
            lambda call_id: answer_call(call_id, api, connection, question),
        )
        server = make_server("127.0.0.1", port, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.port}/webhook"
        log(f"listening on {url}")
        try:
            call = service.calls.create_incoming()  # a call, and its signed webhook
            log(f"ringing: call {call.call_id}")
            forged = call.body.replace(call.call_id.encode(), b"rtc_someone_else")
            log(f"tampered webhook: HTTP {post(url, forged, call.headers)}")
            log(f"webhook: HTTP {post(url, call.body, call.headers)}")
            for thread in app.extensions["calls"]:
                thread.join(60)
        finally:
            server.shutdown()
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
