"""Suggested groups: offline TF-IDF over French stems, cosine, average linkage; deterministic and fast."""

from __future__ import annotations

import random
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from piu_app.services import grouping

NOTES = [
    (1, "Les délais de la commande publique sont trop longs"),
    (2, "La commande publique est trop lente et complexe"),
    (3, "Les élus ont peur du risque"),
    (4, "Culture du risque absente chez les élus"),
    (5, "Pas de foncier disponible"),
    (6, "Accès aux données difficile"),
    (7, "Pas de données ouvertes"),
]


def test_notes_that_share_their_wording_are_grouped_and_named():
    found = grouping.suggest(NOTES)
    assert sorted(s.keys for s in found) == [(1, 2), (3, 4), (6, 7)]
    labels = {s.keys: s.label for s in found}
    assert "commande" in labels[(1, 2)] and "publique" in labels[(1, 2)]
    assert "risque" in labels[(3, 4)]
    assert all(0 < s.cohesion <= 1 for s in found)


def test_french_stems_and_stop_words():
    assert [stem for stem, _w in grouping.words("Les financements de l'expérimentation")] == [
        stem for stem, _w in grouping.words("financement expérimentations")]
    assert grouping.words("le la les de des du et à") == []


def test_a_higher_threshold_makes_fewer_groups():
    assert len(grouping.suggest(NOTES, threshold=0.95)) == 0
    assert len(grouping.suggest(NOTES, threshold=0.01)) <= len(grouping.suggest(NOTES))


def test_similar_ranks_the_closest_texts_first():
    ranked = grouping.similar("commande publique trop lente", [("a", "Foncier rare"), ("b", "Commande publique lente"),
                                                                ("c", "La commande des élus")])
    assert [key for key, _score in ranked][:1] == ["b"]
    assert "a" not in [key for key, _score in ranked]


def _realistic(n: int, seed: int = 7) -> list[tuple[int, str]]:
    """Notes written like a room writes them: a few topic words among many others."""
    rng = random.Random(seed)
    topics = ["commande publique délais procédure marché", "financement budget subvention investissement",
              "élus risque culture prudence", "données ouvertes numérique plateforme", "foncier espace terrain",
              "usagers acceptabilité habitants concertation", "compétences ingénierie formation agents",
              "start-up porteurs entreprise taille", "territoire écosystème gouvernance acteurs"]
    filler = ("manque temps difficile accès lourdeur lenteur besoin absence coût trop peu mieux partage "
              "connaissance visibilité réseau confiance expérimentation projet ville service solution").split()
    notes = []
    for i in range(n):
        words = rng.sample(rng.choice(topics).split(), 2) + rng.sample(filler, rng.randint(2, 8))
        rng.shuffle(words)
        notes.append((i, " ".join(words)))
    return notes


def test_500_notes_take_well_under_a_second():
    notes = _realistic(500)
    start = time.process_time()  # the CPU this process spent: other tests running beside it do not count
    found = grouping.suggest(notes)
    elapsed = time.process_time() - start
    assert elapsed < 1.0, elapsed
    assert found and sum(len(s.keys) for s in found) <= 500


_texts = st.lists(st.text(max_size=200), max_size=40)


@settings(max_examples=60, deadline=None)
@given(_texts, st.floats(min_value=0.01, max_value=1.0))
def test_any_texts_no_crash_each_note_in_at_most_one_group_deterministic(texts, threshold):
    notes = list(enumerate(texts))
    first = grouping.suggest(notes, threshold=threshold)
    keys = [k for s in first for k in s.keys]
    assert len(keys) == len(set(keys))
    assert set(keys) <= {k for k, _t in notes}
    assert all(len(s.keys) >= 2 for s in first)
    assert grouping.suggest(notes, threshold=threshold) == first
