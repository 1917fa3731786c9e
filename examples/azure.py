"""Azure OpenAI: the same client, with the two URL forms Azure serves.

    python examples/azure.py --deployment my-realtime    # AZURE_OPENAI_ENDPOINT and
                                                         # AZURE_OPENAI_API_KEY set
    python examples/azure.py --local                     # the local server's Azure paths

- GA: ``/openai/v1/realtime?model=<deployment>``, the GA dialect, like OpenAI's own;
- legacy: ``/openai/realtime?api-version=...&deployment=<deployment>``, the pre-GA (beta)
  dialect, for resources and API versions that predate GA.

Either way the key goes in an ``api-key`` header; pass ``azure_ad_token_provider=`` instead
to use Entra ID tokens (called again on every connect). The code that talks to the model is
the same for both: the client translates what differs between the dialects.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator

from realtime_sync import RealtimeClient, RealtimeError


@contextlib.contextmanager
def azure_settings(local: bool) -> Iterator[tuple[str | None, str | None]]:
    """(endpoint, key): Azure's from the environment, or the local server's."""
    if os.environ.get("AZURE_OPENAI_API_KEY") and not local:
        yield None, None  # RealtimeClient.azure() reads AZURE_OPENAI_ENDPOINT / _API_KEY
        return
    from realtime_sync.testing import LocalRealtimeServer

    # The local server serves both Azure paths (and any deployment name) on loopback.
    with LocalRealtimeServer() as server:
        print(f"(no AZURE_OPENAI_API_KEY or --local: the local server at {server.azure_endpoint})")
        yield server.azure_endpoint, "local"


def ask(client: RealtimeClient, question: str) -> str:
    with client:
        # "output_modalities" is the GA name; the legacy client sends it as "modalities".
        client.session.update(session={"output_modalities": ["text"]})
        return client.send_text(question, timeout=30).text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--local", action="store_true", help="use the built-in local server")
    parser.add_argument("--deployment", default="gpt-realtime", help="the deployment name")
    parser.add_argument(
        "--api-version", default="2024-10-01-preview", help="for the legacy URL form"
    )
    args = parser.parse_args()
    try:
        with azure_settings(args.local) as (endpoint, key):
            # GA form: no api_version. (OPENAI_API_VERSION, when set, counts as one.)
            ga = RealtimeClient.azure(endpoint=endpoint, deployment=args.deployment, api_key=key)
            # Legacy form: an api_version selects /openai/realtime and the beta dialect.
            legacy = RealtimeClient.azure(
                endpoint=endpoint,
                deployment=args.deployment,
                api_key=key,
                api_version=args.api_version,
            )
            for name, client in (("GA", ga), ("legacy", legacy)):
                print(f"{name}: {client.url} ({client.dialect} dialect)")
                print(f"  assistant: {ask(client, f'Hello over the {name} URL.')}")
    except RealtimeError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
