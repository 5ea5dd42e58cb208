"""How alike two issues read: TF-IDF cosine over words and word pairs, weighted among the candidates found (pure)."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import replace
from typing import Sequence

from bot.issuetext import Candidate, IssueText

TITLE_CHARS = 256
BODY_CHARS = 1_000  # the store hands candidates' bodies cut to this
POOL = 8  # full-text candidates weighed; a report in other words ranks lower in full-text search
MINIMUM = 0.1  # the similarity from which a candidate whose title shares few words is still worth weighing
TITLE_OVERLAP = 0.25  # the share of title words in common that makes a candidate worth weighing at any similarity
LIMIT = 5  # candidates handed on

_WORD = re.compile(r"[a-z0-9_]+")


def _terms(title: str, body: str) -> Counter[str]:
    # The title twice: it is the reporter's own summary.
    words = _WORD.findall((title or "")[:TITLE_CHARS].lower()) * 2 + _WORD.findall((body or "")[:BODY_CHARS].lower())
    return Counter(words) + Counter(f"{a} {b}" for a, b in zip(words, words[1:]))


def _vector(terms: Counter[str], idf: dict[str, float]) -> dict[str, float]:
    weighted = {t: (1.0 + math.log(n)) * idf[t] for t, n in terms.items()}
    norm = math.sqrt(sum(x * x for x in weighted.values())) or 1.0
    return {t: x / norm for t, x in weighted.items() if x}


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(x * b.get(t, 0.0) for t, x in a.items())


def rank(issue: IssueText, candidates: Sequence[Candidate], *, minimum: float = MINIMUM,
         limit: int = LIMIT) -> list[Candidate]:
    """The candidates most like the issue, best first, each with its similarity (0..1) as `score`.

    Words are weighted by how few of the issue and its candidates use them, so that what a project's
    issues all say (its template, its name) counts for little and what two of them share counts for much.
    """
    others = [c for c in candidates if c.number != issue.number]
    terms = [_terms(issue.title, issue.body)] + [_terms(c.title, c.body) for c in others]
    df = Counter(t for doc in terms for t in doc)
    idf = {t: math.log((len(terms) + 1) / (n + 1)) for t, n in df.items()}
    mine = _vector(terms[0], idf)
    scored = [(round(_cosine(mine, _vector(doc, idf)), 3), c) for doc, c in zip(terms[1:], others)]
    scored.sort(key=lambda pair: (-pair[0], pair[1].number))
    return [replace(c, score=s) for s, c in scored if s >= minimum][:limit]


def _title_words(title: str) -> set[str]:
    return {w for w in _WORD.findall((title or "")[:TITLE_CHARS].lower()) if len(w) > 2}


def candidates(issue: IssueText, found: Sequence[Candidate], *, minimum: float = MINIMUM,
               limit: int = LIMIT) -> list[Candidate]:
    """The full-text candidates worth weighing as duplicates, most similar first: those whose title shares
    enough words with the issue's, and those whose text reads alike though their title is worded otherwise.

    Full-text search matches on any shared word; passing weak matches on would cost tokens and invite
    false duplicates.
    """
    title = _title_words(issue.title)

    def shares_title(candidate: Candidate) -> bool:
        other = _title_words(candidate.title)
        return bool(title and other) and len(title & other) / len(title | other) >= TITLE_OVERLAP

    return [c for c in rank(issue, found, minimum=0.0, limit=len(found))
            if c.score >= minimum or shares_title(c)][:limit]
