"""Python functions as tools the model can call: ``from realtime_sync.tools import Tool``.

A :class:`Tool` is a function with its JSON schema (from its signature, annotations and
docstring, or given); a :class:`ToolRegistry` holds the client's (``client.tools``).
``result_output`` and ``error_output`` turn what a tool returned, or raised, into the text
the model receives, for apps that answer function calls themselves.
"""

from ._tools import Tool, ToolArgumentsError, ToolRegistry, error_output, result_output

__all__ = ["Tool", "ToolArgumentsError", "ToolRegistry", "error_output", "result_output"]
