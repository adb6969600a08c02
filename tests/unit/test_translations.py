"""Every visible string of the hub is translated: the catalogues hold every message that
`pybabel extract` finds in the code (every module of the hub: the portal's pages and the mails
the hub sends) and the templates, each with a French and an English text."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Message
from babel.messages.pofile import read_po

from hub.followups.staff_mails import mail_texts
from hub.portal.i18n import compile_catalogues

ROOT = Path(__file__).resolve().parents[2]
PYBABEL = str(Path(sys.executable).parent / "pybabel")


@pytest.fixture(scope="module")
def extracted_messages(tmp_path_factory: pytest.TempPathFactory) -> list[Message]:
    """What `make messages` extracts (babel.cfg), with where each message was found."""
    template = tmp_path_factory.mktemp("babel") / "messages.pot"
    subprocess.run([PYBABEL, "extract", "-F", "babel.cfg", "-k", "_l", "-o", str(template),
                    "."], cwd=ROOT, check=True, capture_output=True)
    with template.open("rb") as source:
        return [message for message in read_po(source) if message.id]


@pytest.fixture(scope="module")
def extracted(extracted_messages: list[Message]) -> set[str]:
    return {message.id for message in extracted_messages}


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_catalogue_translates_every_message(extracted: set[str], language: str) -> None:
    path = ROOT / "hub" / "portal" / "translations" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as source:
        catalogue = read_po(source)
    translated = {m.id for m in catalogue if m.id and not m.fuzzy and (
        all(m.string) if isinstance(m.string, (list, tuple)) else m.string)}
    missing = sorted(extracted - translated, key=str)
    assert not missing, f"untranslated in {language}: {missing[:10]}"
    assert len(extracted) > 200  # the extraction found the portal's strings


def _modules_that_mail() -> list[Path]:
    """The hub's modules that queue mails (`hub.outbox.mail.queue_mail(s)`), the outbox
    itself aside."""
    found = []
    for path in sorted((ROOT / "hub").rglob("*.py")):
        if path == ROOT / "hub" / "outbox" / "mail.py":
            continue
        calls = {node.func.attr if isinstance(node.func, ast.Attribute) else
                 getattr(node.func, "id", None)
                 for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                 if isinstance(node, ast.Call)}
        if calls & {"queue_mail", "queue_mails"}:
            found.append(path.relative_to(ROOT))
    return found


def test_the_texts_of_every_mail_the_hub_sends_are_extracted(
        extracted_messages: list[Message]) -> None:
    """A mail's subject and text come from the catalogues: each module that queues mails
    has its messages extracted (and so translated, above)."""
    mailing = _modules_that_mail()
    assert {str(path) for path in mailing} >= {
        "hub/followups/checkins.py", "hub/followups/digests.py", "hub/followups/staff_mails.py",
        "hub/portal/auth.py", "hub/portal/admin_users.py"}
    places = {Path(filename) for message in extracted_messages
              for filename, _line in message.locations}
    assert [path for path in mailing if path not in places] == []


def test_no_module_keeps_texts_of_its_own_beside_the_catalogues() -> None:
    """No hand-written {"fr": {...}, "en": {...}} dictionary of texts: they belong to the
    catalogues."""
    found = []
    for path in sorted((ROOT / "hub").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Dict) and {"fr", "en"} <= {
                    key.value for key in node.keys if isinstance(key, ast.Constant)} and any(
                    isinstance(value, ast.Dict) for value in node.values):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


@pytest.mark.parametrize(("language", "subject"), [
    ("fr", "Orientation expirée sans réponse : 7a1e"),
    ("en", "Referral expired without an answer: 7a1e"),
])
def test_mails_read_the_compiled_catalogues_without_an_app(language: str, subject: str) -> None:
    """Mails are built in the worker's threads too, with no app context: they read the
    catalogues themselves, in the recipient's language."""
    compile_catalogues()  # as the app factory does (`make translations` too)
    texts = mail_texts(language)
    assert texts.gettext("Referral expired without an answer: %(reference)s") % {
        "reference": "7a1e"} == subject
    assert texts.ngettext("… and one more, in the list of inbound referrals.\n\n",
                          "… and %(num)d more, in the list of inbound referrals.\n\n",
                          2) % {"num": 2} == {
        "fr": "… et 2 autres, dans la liste des orientations reçues.\n\n",
        "en": "… and 2 more, in the list of inbound referrals.\n\n"}[language]



def test_mails_stay_in_french_where_no_compiled_catalogue_was_built(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An image built without `pybabel compile`, whose hub may not write one: the mails read
    the source catalogue, so a French recipient still gets French."""
    from hub.followups import staff_mails

    copy = tmp_path / "translations"
    shutil.copytree(staff_mails.CATALOGUES, copy,
                    ignore=shutil.ignore_patterns("*.mo"))
    assert not list(copy.rglob("*.mo"))
    monkeypatch.setattr(staff_mails, "CATALOGUES", copy)
    texts = staff_mails.mail_texts("fr")
    assert texts.gettext("Referral expired without an answer: %(reference)s") % {
        "reference": "7a1e"} == "Orientation expirée sans réponse : 7a1e"


SPELLED_THE_SAME = {"Action", "Actions", "Administration", "Description", "Exploration", "Notes",
                    "Pages", "Participant", "Participants", "Verbal", "Webhooks"}


def test_french_is_french() -> None:
    """The French catalogue is not a copy of the English one."""
    path = ROOT / "hub" / "portal" / "translations" / "fr" / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as source:
        catalogue = [m for m in read_po(source) if m.id]
    same = {m.id for m in catalogue if m.string == m.id}
    # Only words spelled the same in both languages may be left as they are.
    assert same <= SPELLED_THE_SAME, sorted(same - SPELLED_THE_SAME)


def test_french_apostrophes_are_typographic() -> None:
    """French is written with ’ (l’offre, jusqu’au), never the typewriter's '."""
    path = ROOT / "hub" / "portal" / "translations" / "fr" / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as source:
        catalogue = [m for m in read_po(source) if m.id]
    straight = [text for m in catalogue
                for text in (m.string if isinstance(m.string, tuple) else (m.string,))
                if "'" in text]
    assert straight == []
