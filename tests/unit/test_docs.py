"""The documentation stays true to the code: README.md stays a short first screen, docs/ names
what the code holds, and no link leads nowhere."""

from __future__ import annotations

import re
from pathlib import Path

from hub.events.types import EventType

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
ARCHITECTURE = DOCS / "architecture.md"
# The files whose relative links must lead somewhere.
LINKED = [README, *sorted(DOCS.glob("*.md")), ROOT / "bench" / "README.md"]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def section(path: Path, heading: str) -> str:
    """The text under `## heading` (its ### subsections included), up to the next `## `."""
    text = path.read_text(encoding="utf-8")
    assert f"\n## {heading}\n" in text, f"{path.name} has no section '## {heading}'"
    return text.split(f"\n## {heading}\n")[1].split("\n## ")[0]


def test_the_event_types_are_documented_exactly() -> None:
    events = section(DOCS / "api-and-events.md", "Events")
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", events, flags=re.M))
    assert documented == {t.value for t in EventType}


def test_every_environment_variable_is_documented() -> None:
    from hub.config import SETTINGS

    configuration = section(DOCS / "operations.md", "Configuration")
    for setting in SETTINGS:
        assert f"`{setting.env}`" in configuration, setting.env


def code_paths() -> set[str]:
    """Every package (`hub/referrals/`) and module (`hub/referrals/legs.py`, every `*.py` but
    `__init__.py`) of `hub/` and `webhooks/`, as architecture.md names them."""
    found: set[str] = set()
    for top in ("hub", "webhooks"):
        for path in (ROOT / top).rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            relative = path.relative_to(ROOT)
            if path.name == "__init__.py":
                found.add(f"{relative.parent.as_posix()}/")
            else:
                found.add(relative.as_posix())
    return found


def test_architecture_names_every_package_and_module() -> None:
    named = set(re.findall(r"`((?:hub|webhooks)/[\w/.]*)`",
                           ARCHITECTURE.read_text(encoding="utf-8")))
    missing = sorted(code_paths() - named)
    assert not missing, f"docs/architecture.md does not name: {missing}"


def test_code_paths_named_in_the_docs_exist() -> None:
    """A module moved or removed takes its name out of the docs with it."""
    stale = []
    for path in LINKED:
        for name in re.findall(r"`((?:hub|webhooks|tests|bench|migrations)/[\w/.-]*)`",
                               path.read_text(encoding="utf-8")):
            if name.endswith((".py", "/", ".md")) and not (ROOT / name).exists():
                stale.append(f"{path.relative_to(ROOT)}: {name}")
    assert not stale, sorted(set(stale))


def test_readme_is_a_first_screen() -> None:
    from hub.demo import DEMO_PASSWORD, DEMO_USERS

    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 220, f"README.md has {len(lines)} lines"
    first = "\n".join(lines[:100])
    assert "make run" in first and "make test" in first
    for _organization, email, _name, _role, _form in DEMO_USERS:
        assert f"`{email}`" in first, email
    assert f"`{DEMO_PASSWORD}`" in first
    # The walk-through comes right after, on the first screen and a half.
    end = next(number for number, line in enumerate(lines, 1)
               if line == "<!-- walkthrough:end -->")
    assert end <= 110, f"the walk-through ends at line {end}"


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {slug(heading) for heading in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def test_relative_links_lead_to_files_and_headings_that_exist() -> None:
    broken = []
    for path in LINKED:
        text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
        for target in LINK.findall(text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:...
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(ROOT)}: {target}"
            if not linked.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{where} (no such heading)")
    assert not broken, broken
