"""JSON encoding for the wire: orjson when it is installed, the standard library otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "loads"]

loads: Callable[[str | bytes], Any]
dumps: Callable[[Any], bytes]

try:
    import orjson
except ImportError:
    loads = json.loads
    _encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

    def dumps(value: Any) -> bytes:
        """Encode ``value`` as compact UTF-8 JSON."""
        return _encoder.encode(value).encode()

else:
    loads = orjson.loads
    dumps = orjson.dumps
