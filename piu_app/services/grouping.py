"""Suggested groups of sticky notes, computed offline in pure Python.

Each note becomes a TF-IDF vector over French-stemmed words (snowballstemmer) without the words
that carry no meaning (a French stop list); two notes are as close as the cosine of their vectors;
groups are made by average-linkage agglomerative clustering, merging the two closest groups while
their average similarity stays at or above a threshold. Only pairs that share a word have a
similarity, so the work grows with the shared words, not with the square of the notes: 500 notes
take a few tens of milliseconds.

Deterministic: the same texts in the same order give the same groups (ties are broken by order).
It catches shared wording and misses synonyms: these are suggestions the facilitator accepts,
edits or ignores.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

DEFAULT_THRESHOLD = 0.25
MIN_GROUP_SIZE = 2
MAX_LABEL_WORDS = 3

_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*", re.UNICODE)
# Elisions (l', d', qu'…) are cut off by the word pattern: the apostrophe is not a letter.
STOP_WORDS = frozenset("""
a à afin ai aie aient aies ait alors après as au aucun aucune aupres auprès aussi autre autres aux avec avait
avaient avant avez aviez avions avoir avons ayant c ça car ce ceci cela celle celles celui cependant ces cet
cette ceux chaque chez ci comme comment d dans de des donc dont du elle elles en encore entre es est et été
étaient était étant être eu eux fait faire fois font hors il ils j je jusqu l la là le les leur leurs lors
lorsque lui m ma mais me même mêmes mes moi moins mon n ne ni non nos notre nous on ont or ou où par parce
pas peu peut peuvent plus pour pourquoi qu quand que quel quelle quelles quels qui quoi s sa sans se selon ses
si sien soi soit son sont sous souvent sur t ta te tes toi ton tous tout toute toutes très trop tu un une unes
uns vers via voire vos votre vous y
assez beaucoup bien faut falloir fois manque peu tres etc ex exemple
the and of to in for on with is are be not no
""".split())

_stemmer = snowballstemmer.stemmer("french")


@dataclass(frozen=True)
class Suggestion:
    """A group of at least two notes whose wording is close, with a few words that name it."""

    keys: tuple[Hashable, ...]
    label: str
    cohesion: float  # the group's average pairwise similarity, 0 to 1


@lru_cache(maxsize=50_000)
def _stem(word: str) -> str:
    return _stemmer.stemWord(word)


def words(text: str) -> list[tuple[str, str]]:
    """Return (stem, word) for each meaningful word of `text`, in order."""
    found = []
    for match in _WORD.finditer(text.lower()):
        for word in match.group().split("-"):
            if len(word) < 2 or word in STOP_WORDS:
                continue
            found.append((_stem(word), word))
    return found


def vectors(texts: Sequence[str]) -> list[dict[str, float]]:
    """Return the L2-normalised TF-IDF vector (stem → weight) of each text."""
    counts = [Counter(stem for stem, _word in words(text)) for text in texts]
    document_frequency: Counter[str] = Counter()
    for c in counts:
        document_frequency.update(c.keys())
    n = len(texts)
    result = []
    for c in counts:
        total = sum(c.values()) or 1
        vec = {stem: (k / total) * (math.log((1 + n) / (1 + document_frequency[stem])) + 1.0)
               for stem, k in c.items()}
        norm = math.sqrt(sum(w * w for w in vec.values()))
        result.append({stem: w / norm for stem, w in vec.items()} if norm else {})
    return result


def similarities(vecs: Sequence[dict[str, float]]) -> dict[tuple[int, int], float]:
    """Return the cosine of every pair (i < j) that shares at least one stem."""
    postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for i, vec in enumerate(vecs):
        for stem, w in vec.items():
            postings[stem].append((i, w))
    sims: dict[tuple[int, int], float] = defaultdict(float)
    for entries in postings.values():
        for a in range(len(entries)):
            i, wi = entries[a]
            for b in range(a + 1, len(entries)):
                j, wj = entries[b]
                sims[(i, j)] += wi * wj
    return dict(sims)


def clusters(n: int, sims: dict[tuple[int, int], float], threshold: float) -> list[list[int]]:
    """Group 0..n-1 by average linkage, merging while the closest groups' average similarity ≥ threshold."""
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    # Sum of the pairwise similarities between two live clusters (only pairs with a shared word).
    link: dict[int, dict[int, float]] = defaultdict(dict)
    heap: list[tuple[float, int, int]] = []
    for (i, j), s in sims.items():
        link[i][j] = s
        link[j][i] = s
        if s >= threshold:
            heap.append((-s, i, j))
    heapq.heapify(heap)
    while heap:
        neg, a, b = heapq.heappop(heap)
        if a not in members or b not in members:
            continue  # one of them was merged since
        current = link[a].get(b, 0.0) / (len(members[a]) * len(members[b]))
        if abs(current + neg) > 1e-12:
            continue  # stale entry: the pair's average changed
        # Merge b into a (a < b always: the smaller index keeps the group, so the result is stable).
        members[a].extend(members.pop(b))
        for c, s in link.pop(b).items():
            link[c].pop(b, None)
            if c == a:
                continue
            total = link[a].get(c, 0.0) + s
            link[a][c] = total
            link[c][a] = total
        size_a = len(members[a])
        for c, s in link[a].items():
            average = s / (size_a * len(members[c]))
            if average >= threshold:
                heapq.heappush(heap, (-average, min(a, c), max(a, c)))
    return [sorted(group) for _first, group in sorted(members.items())]


def _cohesion(group: list[int], sims: dict[tuple[int, int], float]) -> float:
    pairs = len(group) * (len(group) - 1) / 2
    total = sum(sims.get((i, j), 0.0) for x, i in enumerate(group) for j in group[x + 1:])
    return total / pairs if pairs else 1.0


def _label(group: list[int], texts: Sequence[str], vecs: Sequence[dict[str, float]]) -> str:
    """Name a group by its heaviest stems, each shown as the word the notes use most for it."""
    weight: dict[str, float] = defaultdict(float)
    shown: dict[str, Counter[str]] = defaultdict(Counter)
    for i in group:
        for stem, w in vecs[i].items():
            weight[stem] += w
        for stem, word in words(texts[i]):
            shown[stem][word] += 1
    # Prefer stems that several notes of the group share, then the heaviest; ties by alphabet.
    spread = {stem: sum(1 for i in group if stem in vecs[i]) for stem in weight}
    best = sorted(weight, key=lambda s: (-spread[s], -weight[s], s))[:MAX_LABEL_WORDS]
    return ", ".join(min(shown[s].items(), key=lambda kv: (-kv[1], kv[0]))[0] for s in best)


def suggest(notes: Sequence[tuple[Hashable, str]], *, threshold: float = DEFAULT_THRESHOLD) -> list[Suggestion]:
    """Return suggested groups of `notes` ((key, text) pairs): largest first, each note in one group at most."""
    keys = [key for key, _text in notes]
    texts = [text for _key, text in notes]
    vecs = vectors(texts)
    sims = similarities(vecs)
    found = []
    for group in clusters(len(texts), sims, threshold):
        if len(group) < MIN_GROUP_SIZE:
            continue
        found.append(Suggestion(tuple(keys[i] for i in group), _label(group, texts, vecs), _cohesion(group, sims)))
    found.sort(key=lambda s: -len(s.keys))  # stable: equal sizes keep the order of their first note
    return found


def similar(text: str, candidates: Sequence[tuple[Hashable, str]], *, limit: int = 5,
            minimum: float = 0.15) -> list[tuple[Hashable, float]]:
    """Return the candidates closest to `text` ((key, cosine), best first, at least `minimum`)."""
    vecs = vectors([text, *(t for _k, t in candidates)])
    query = vecs[0]
    scored = []
    for index, (key, _t) in enumerate(candidates, start=1):
        score = sum(w * vecs[index].get(stem, 0.0) for stem, w in query.items())
        if score >= minimum:
            scored.append((index, key, score))
    scored.sort(key=lambda item: (-item[2], item[0]))
    return [(key, score) for _i, key, score in scored[:limit]]
