"""Conversation objects: the items of a conversation, their content, the conversation.

:class:`ConversationItem` is one class for every item type (messages, function calls and
their outputs, the MCP items), with its content as :class:`ContentPart` tuples, the MCP
tools a server lists (:class:`McpTool`) and why an MCP call failed (:class:`McpError`);
:class:`Conversation` is what ``conversation.created`` announces. These are leaves of the
protocol layer: they import nothing but :mod:`._models`. They follow the conventions
described in :mod:`._objects`, which re-exports every name defined here: the rest of the
package imports them from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

from ._models import Model

__all__ = ["ContentPart", "Conversation", "ConversationItem", "McpError", "McpTool"]


@frozen(kw_only=True)
class ContentPart(Model):
    """One piece of an item's content: text, audio, an image or a reference.

    Its ``type`` is ``input_text``, ``input_audio`` or ``input_image`` in what we send,
    ``output_text`` or ``output_audio`` in what the model produces (GA), ``text`` or
    ``audio`` in beta items and some GA ones, or ``item_reference`` (beta).
    """

    type: str | None
    """The kind of part (see the class description)."""
    text: str | None
    """The text, for text parts."""
    audio: str | None
    """Base64 audio, for audio parts (often omitted by servers)."""
    transcript: str | None
    """Transcript of an audio part."""
    format: str | None
    """Encoding of an audio part, when the server names it (e.g. ``pcm16``)."""
    image_url: str | None
    """Image as a URL or base64 data URL, for ``input_image``."""
    detail: str | None
    """Image detail for ``input_image``: ``auto``, ``low`` or ``high``."""
    id: str | None
    """Beta ``item_reference``: the id of the referenced item."""


@frozen(kw_only=True)
class McpTool(Model):
    """A tool an MCP server offers, as an ``mcp_list_tools`` item lists it."""

    name: str | None
    """The tool's name."""
    description: str | None
    """What it does."""
    input_schema: Mapping[str, Any] | None
    """JSON Schema of its arguments."""
    annotations: Mapping[str, Any] | None
    """Extra information about the tool, such as hints that it only reads."""


@frozen(kw_only=True)
class McpError(Model):
    """Why an MCP tool call failed."""

    type: str | None
    """``protocol_error``, ``tool_execution_error`` or ``http_error``."""
    code: int | None
    """Error code of a protocol or HTTP error."""
    message: str | None
    """Human-readable explanation."""


@frozen(kw_only=True)
class ConversationItem(Model):
    """An item of the conversation.

    One class for every item type: ``message``, ``function_call``, ``function_call_output``,
    ``mcp_call``, ``mcp_list_tools``, ``mcp_approval_request``, ``mcp_approval_response``;
    the fields of the other types are None.
    """

    id: str | None
    """Item id, ``item_...``."""
    object: str | None
    """``realtime.item``."""
    type: str | None
    """The item type (see the class description)."""
    status: str | None
    """``in_progress``, ``completed`` or ``incomplete``."""
    role: str | None
    """message: ``user``, ``assistant`` or ``system``."""
    content: tuple[ContentPart, ...] | None
    """message: the content parts."""
    call_id: str | None
    """function_call and function_call_output: the call id."""
    name: str | None
    """function_call, mcp_call, mcp_approval_request: the tool's name."""
    arguments: str | None
    """function_call, mcp_call, mcp_approval_request: the JSON-encoded arguments."""
    output: str | None
    """function_call_output and mcp_call: the result."""
    server_label: str | None
    """mcp_*: the MCP server."""
    tools: tuple[McpTool, ...] | None
    """mcp_list_tools: the server's tools."""
    error: McpError | None
    """mcp_call: why the call failed, if it did."""
    approval_request_id: str | None
    """mcp_call and mcp_approval_response: the approval request answered."""
    approve: bool | None
    """mcp_approval_response: whether the call was approved."""
    reason: str | None
    """mcp_approval_response: why."""


@frozen(kw_only=True)
class Conversation(Model):
    """The conversation, as ``conversation.created`` announces it."""

    id: str | None
    """Conversation id, ``conv_...``."""
    object: str | None
    """``realtime.conversation``."""
