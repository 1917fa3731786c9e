"""The shortest complete program: connect, ask one question, print the answer.

    python examples/quickstart.py            # OpenAI, with OPENAI_API_KEY set
    python examples/quickstart.py --local    # the built-in local server, offline

It is the README's first snippet. The one addition: a real session answers with audio
unless asked otherwise, so the question asks for text.
"""

import sys

from _connect import client_options

from realtime_sync import RealtimeClient

with client_options(local="--local" in sys.argv[1:]) as options:  # {} for OpenAI
    client = RealtimeClient(**options)  # the key from OPENAI_API_KEY
    client.on("session.created", lambda ev: print("session", ev.session.id))

    with client:  # blocks until session.created
        reply = client.send_text(  # blocks until response.done
            "What is 2+2?", response={"output_modalities": ["text"]}, timeout=30
        )
        print(reply.text, reply.usage.total_tokens)
