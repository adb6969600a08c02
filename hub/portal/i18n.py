"""Languages of the portal: French by default, English too (Flask-Babel).

The language is, in order: the one the person chose with the switch (kept in the session),
their account's, their browser's, else French.  Catalogues live in `hub/portal/translations`; the
Makefile compiles them (`make translations`) before the hub runs or is tested.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime
from pathlib import Path

from flask import Flask, g, request, session
from flask_babel import Babel, format_date, format_datetime, get_locale, to_user_timezone

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"
TIME_ZONE = "America/Toronto"  # Québec's time (America/Montreal is an alias of it)
TRANSLATIONS = Path(__file__).resolve().parent / "translations"

babel = Babel()
log = logging.getLogger(__name__)


def current_language() -> str:
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    user = g.get("user")
    if user is not None and user.language in LANGUAGES:
        return user.language
    return request.accept_languages.best_match(LANGUAGES, default=DEFAULT_LANGUAGE)


# A day of the month standing alone in a Babel pattern ("d MMMM y"), not "dd" nor quoted.
_DAY = re.compile(r"(?<![d'])d(?![d'])")
_NAMED = ("short", "medium", "long", "full")


def _first_of_month(value: date | datetime) -> bool:
    """Whether French writes `value` with "1er": the first of a month, in the portal's time
    zone for a moment."""
    locale = get_locale()
    day = to_user_timezone(value).date() if isinstance(value, datetime) else value
    return locale is not None and locale.language == "fr" and day.day == 1


def format_day(value: date | datetime | None, format: str = "medium") -> str:
    """The portal's `dateformat` filter: Flask-Babel's, except that French writes the first
    of a month "1er décembre 2026" ("mardi 1er décembre 2026"), as French readers expect,
    where Babel writes "1 décembre".  A moment is read in the portal's time zone first."""
    if value is None:
        return ""
    if _first_of_month(value):
        locale = get_locale()
        assert locale is not None
        pattern = locale.date_formats[format].pattern if format in _NAMED else format
        return format_date(value, _DAY.sub("d'er'", pattern))
    return format_date(value, format)


def format_moment(value: datetime | None, format: str = "medium") -> str:
    """The portal's `datetimeformat` filter, with the same "1er" for a pattern
    (`labels.minute_format`: "1er déc. 2026, 14 h 05")."""
    if value is None:
        return ""
    if format not in _NAMED and _first_of_month(value):
        return format_datetime(value, _DAY.sub("d'er'", format))
    return format_datetime(value, format)


def compile_catalogues(directory: Path = TRANSLATIONS) -> None:
    """Compile each `messages.po` whose `.mo` is missing or older (`make translations` does
    the same); a read-only installation that ships compiled catalogues skips this."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in directory.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        try:
            with po.open("rb") as source:
                catalogue = read_po(source)
            with mo.open("wb") as target:
                write_mo(target, catalogue)
        except OSError as error:
            log.warning("cannot compile %s: %s", po, error)


def init_app(app: Flask) -> None:
    compile_catalogues()
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", TIME_ZONE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    babel.init_app(app, locale_selector=current_language, timezone_selector=lambda: TIME_ZONE)
    app.jinja_env.filters["dateformat"] = format_day
    app.jinja_env.filters["datetimeformat"] = format_moment
