"""Text folding for the directory's search: what a French speaker types should find what the
directory holds, accents or not ("Montreal" finds "Montréal", "cooperative" "coopérative").

The same folding runs on both sides (the stored search column and the query), in Python, so
SQLite and PostgreSQL behave alike without database extensions for accents.
"""

from __future__ import annotations

import re
import unicodedata

# Letters NFKD does not split into a base letter and an accent.
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss"})
_ACCENTS = re.compile(r"[\u0300-\u036f]+")  # the combining marks NFKD splits off letters
# Apostrophes, dashes and other punctuation become word breaks: "d'intégration" → "d integration".
_NOT_WORD = re.compile(r"[\W_]+")


def fold(text: str | None) -> str:
    """Lower case, without accents or punctuation, single spaces: 'Côte-des-Neiges' →
    'cote des neiges'."""
    if not text:
        return ""
    text = text.casefold()
    if not text.isascii():
        text = _ACCENTS.sub("", unicodedata.normalize("NFKD", text.translate(_LIGATURES)))
    return _NOT_WORD.sub(" ", text).strip()


def search_words(query: str) -> list[str]:
    """The folded words of a query; each must appear in an entry for it to match."""
    return [word for word in fold(query).split() if word]
