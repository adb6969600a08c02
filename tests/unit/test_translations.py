"""Every visible string of the portal is translated: the catalogues hold every message that
`pybabel extract` finds in the code and templates, each with a French and an English text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
PYBABEL = str(Path(sys.executable).parent / "pybabel")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    template = tmp_path_factory.mktemp("babel") / "messages.pot"
    subprocess.run([PYBABEL, "extract", "-F", "babel.cfg", "-k", "_l", "-o", str(template),
                    "."], cwd=ROOT, check=True, capture_output=True)
    with template.open("rb") as source:
        return {message.id for message in read_po(source) if message.id}


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_catalogue_translates_every_message(extracted: set[str], language: str) -> None:
    path = ROOT / "hub" / "portal" / "translations" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as source:
        catalogue = read_po(source)
    translated = {m.id for m in catalogue if m.id and m.string and not m.fuzzy}
    missing = sorted(extracted - translated)
    assert not missing, f"untranslated in {language}: {missing[:10]}"
    assert len(extracted) > 200  # the extraction found the portal's strings


SPELLED_THE_SAME = {"Action", "Actions", "Administration", "Description", "Exploration",
                    "Pages", "Participant", "Participants", "Verbal", "Webhooks"}


def test_french_is_french() -> None:
    """The French catalogue is not a copy of the English one."""
    path = ROOT / "hub" / "portal" / "translations" / "fr" / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as source:
        catalogue = [m for m in read_po(source) if m.id]
    same = {m.id for m in catalogue if m.string == m.id}
    # Only words spelled the same in both languages may be left as they are.
    assert same <= SPELLED_THE_SAME, sorted(same - SPELLED_THE_SAME)
