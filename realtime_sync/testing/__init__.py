"""Test helpers: a local Realtime server to run clients against.

``realtime_sync.testing`` needs the optional ``websockets`` dependency
(``pip install realtime_sync[server]``)::

    from realtime_sync.testing import LocalRealtimeServer

    with LocalRealtimeServer(api_key="sk-test", reply="Hi there") as server:
        ...  # connect a client to server.url (or server.azure_endpoint)
        server.wait_for_received("response.create")
"""

from ._server import AuthMethod, ConnectionRecord, Dialect, LocalRealtimeServer

__all__ = ["AuthMethod", "ConnectionRecord", "Dialect", "LocalRealtimeServer"]
