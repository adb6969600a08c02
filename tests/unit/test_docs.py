"""The README stays true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from hub.events.types import EventType

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_documents_exactly_the_event_types() -> None:
    readme = README.read_text()
    section = readme.split("## Events")[1].split("\n## ")[0]
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", section, flags=re.M))
    assert documented == {t.value for t in EventType}


def test_readme_documents_every_environment_variable() -> None:
    from hub.config import SETTINGS

    section = README.read_text().split("## Configuration")[1].split("\n## ")[0]
    for setting in SETTINGS:
        assert f"`{setting.env}`" in section, setting.env
