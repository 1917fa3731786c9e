"""The event reference: written from the code, and the README's copy of it kept equal."""

from __future__ import annotations

import re
from pathlib import Path

from realtime_sync._dialects import (
    BETA_CLIENT_EVENTS,
    BETA_SERVER_EVENTS,
    CLIENT_SIDE_EVENTS,
    GA_CLIENT_EVENTS,
    GA_SERVER_EVENTS,
)
from realtime_sync._reference import events_markdown

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_holds_the_reference_as_the_code_writes_it() -> None:
    found = re.search(
        r"<!-- events:start -->\n(.*)<!-- events:end -->", README.read_text(), re.DOTALL
    )
    assert found, "README.md has no event reference block"
    assert found.group(1) == events_markdown(), (
        "README.md's event reference is out of date: paste the output of "
        "`python -m realtime_sync events --markdown` between its markers"
    )


def test_every_event_type_has_a_row_with_a_class_and_a_description() -> None:
    rows = dict(re.findall(r"^\| `([^`]+)` \| [^|]+ \| (.+) \|$", events_markdown(), re.M))
    every = (
        GA_SERVER_EVENTS
        | BETA_SERVER_EVENTS
        | GA_CLIENT_EVENTS
        | BETA_CLIENT_EVENTS
        | CLIENT_SIDE_EVENTS
    )
    assert set(rows) == every
    for name, described in rows.items():
        assert re.fullmatch(r"`\w+`: \w.{8,}", described), (name, described)
