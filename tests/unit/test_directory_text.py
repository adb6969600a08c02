"""Folding for the directory search: French text typed with or without accents matches."""

from hub.directory.text import fold, search_words


def test_accents_case_and_punctuation_fold_away() -> None:
    assert fold("Coopérative de développement régional du Québec") == (
        "cooperative de developpement regional du quebec")
    assert fold("Carrefour d’intégration — Côte-des-Neiges") == (
        "carrefour d integration cote des neiges")
    assert fold("ŒUVRE des Îles") == "oeuvre des iles"


def test_a_query_is_its_folded_words() -> None:
    assert search_words("  Montreal, l'Estrie ") == ["montreal", "l", "estrie"]
    assert search_words("—") == []
    assert fold(None) == ""
