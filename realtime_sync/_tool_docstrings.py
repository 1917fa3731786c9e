"""Parameter descriptions from docstrings, for tool schemas.

:func:`parse_docstring` gives the summary (first paragraph) of a docstring and the
descriptions of its parameters, written in Google (``Args:``), reST (``:param x:``) or NumPy
(``Parameters`` / ``----------``) style. Pure text processing.
"""

from __future__ import annotations

import inspect
import re

__all__ = ["parse_docstring"]

_PARAM_SECTIONS = frozenset(
    {
        "args",
        "arguments",
        "parameters",
        "params",
        "keyword args",
        "keyword arguments",
        "other parameters",
        "attributes",
    }
)
_SECTIONS = _PARAM_SECTIONS | {
    "returns",
    "return",
    "yields",
    "yield",
    "raises",
    "examples",
    "example",
    "notes",
    "note",
    "see also",
    "warnings",
    "warning",
    "references",
    "todo",
    "methods",
}
_UNDERLINE = re.compile(r"\s*-{3,}\s*")
_REST_PARAM = re.compile(
    r"\s*:(?:param|parameter|arg|argument|key|keyword|ivar|var|cvar)\s+([^:]+?)\s*:(.*)"
)
_REST_FIELD = re.compile(r"\s*:[A-Za-z][\w-]*(?:\s[^:]*)?:")
_GOOGLE_ENTRY = re.compile(r"(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:(.*)")
_NUMPY_ENTRY = re.compile(r"(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::.*)?")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _google_header(line: str) -> str | None:
    stripped = line.strip()
    if stripped.endswith(":") and stripped[:-1].strip().lower() in _SECTIONS:
        return stripped[:-1].strip().lower()
    return None


def _numpy_header(lines: list[str], index: int) -> str | None:
    if index + 1 < len(lines) and _UNDERLINE.fullmatch(lines[index + 1]):
        name = lines[index].strip().lower()
        return name if name in _SECTIONS else None
    return None


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """The summary (first paragraph) of a docstring, and the descriptions of its parameters in
    Google (``Args:``), reST (``:param x:``) or NumPy (``Parameters`` / ``----------``) style."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    for index, line in enumerate(lines):
        if not line.strip():  # cleandoc removed blank lines before the summary
            break
        if _google_header(line) or _numpy_header(lines, index) or _REST_FIELD.match(line):
            break
        summary.append(line.strip())
    params: dict[str, str] = {}
    index = 0
    while index < len(lines):
        line = lines[index]
        if _google_header(line) in _PARAM_SECTIONS:
            index = _google_section(lines, index + 1, _indent(line), params)
        elif _numpy_header(lines, index) in _PARAM_SECTIONS:
            index = _numpy_section(lines, index + 2, _indent(line), params)
        elif match := _REST_PARAM.match(line):
            name = match.group(1).split()[-1].lstrip("*")
            parts = [match.group(2).strip()]
            index += 1
            while (
                index < len(lines)
                and lines[index].strip()
                and _indent(lines[index]) > _indent(line)
                and not _REST_FIELD.match(lines[index])
            ):
                parts.append(lines[index].strip())
                index += 1
            _remember(params, [name], parts)
        else:
            index += 1
    return " ".join(summary), params


def _remember(params: dict[str, str], names: list[str], parts: list[str]) -> None:
    text = " ".join(part for part in parts if part)
    for name in names:
        if text and name not in params:
            params[name] = text


def _google_section(lines: list[str], index: int, header: int, params: dict[str, str]) -> int:
    entry_indent: int | None = None
    names: list[str] = []
    parts: list[str] = []
    while index < len(lines):
        line = lines[index]
        if line.strip():
            indent = _indent(line)
            if indent <= header:
                break
            if entry_indent is None:
                entry_indent = indent
            if indent <= entry_indent:
                _remember(params, names, parts)
                match = _GOOGLE_ENTRY.fullmatch(line.strip())
                names = [match.group(1).lstrip("*")] if match else []
                parts = [match.group(2).strip()] if match else []
            elif names:
                parts.append(line.strip())
        index += 1
    _remember(params, names, parts)
    return index


def _numpy_section(lines: list[str], index: int, header: int, params: dict[str, str]) -> int:
    names: list[str] = []
    parts: list[str] = []
    while index < len(lines):
        line = lines[index]
        if line.strip():
            if _indent(line) <= header:
                if index + 1 < len(lines) and _UNDERLINE.fullmatch(lines[index + 1]):
                    break  # the next section
                _remember(params, names, parts)
                match = _NUMPY_ENTRY.fullmatch(line.strip())
                names = [n.strip().lstrip("*") for n in match.group(1).split(",")] if match else []
                parts = []
            elif names:
                parts.append(line.strip())
        index += 1
    _remember(params, names, parts)
    return index
