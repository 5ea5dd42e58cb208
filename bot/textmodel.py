"""A linear text classifier in pure Python: word n-grams weighted by naive-Bayes log-count ratios (NB-SVM)."""

from __future__ import annotations

import math
import operator
import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

BODY_CHARS = 1_500  # of the body read: its start says what kind of report it is; logs further down add noise
TITLE_CHARS = 256
NGRAMS = 3  # word n-grams of 1 to 3 words
CHAR_NGRAMS = 4  # character n-grams of 1 to 4 within each title word
C = 0.003  # the SVM's cost: strong regularisation keeps the weights near the naive-Bayes ratios
ALPHA = 1.0  # naive-Bayes smoothing
MIN_DF = 2  # a feature seen in one issue only cannot generalise
EPOCHS = 5  # passes over the issues: more change the scores by less than their spread between folds
TOLERANCE = 0.05  # or fewer, once no projected gradient is larger

_WORD = re.compile(r"[a-z0-9_]+|[^\sa-z0-9_]")  # words, and each other visible character on its own


def _word_grams(tokens: list[str], prefix: str, out: set[str]) -> None:
    for n in range(1, NGRAMS + 1):
        for i in range(len(tokens) - n + 1):
            out.add(prefix + " ".join(tokens[i:i + n]))


def ngrams(title: str, body: str) -> set[str]:
    """The features of an issue: word 1-3-grams of title and body start, and the title's own words and characters.

    The raw text is kept (code, traces, template headings): they carry signal about the kind of report.
    """
    title = (title or "")[:TITLE_CHARS].lower()
    title_words = _WORD.findall(title)
    feats: set[str] = set()
    _word_grams(title_words + _WORD.findall((body or "")[:BODY_CHARS].lower()), "", feats)
    _word_grams(title_words, "t:", feats)
    for word in title.split():
        padded = f" {word} "
        for n in range(1, CHAR_NGRAMS + 1):
            feats.update("c:" + padded[i:i + n] for i in range(len(padded) - n + 1))
    return feats


@dataclass(frozen=True)
class LinearModel:
    """One-vs-rest linear scores: a class's score is its bias plus the weights of the features present."""

    classes: tuple[str, ...]
    weights: dict[str, list[float]]  # feature -> weight for each class (NB ratio times SVM weight)
    bias: tuple[float, ...]

    def scores(self, feats: set[str]) -> list[float]:
        """Each class's score for an issue's `ngrams`."""
        scores = list(self.bias)
        get = self.weights.get
        for feat in feats:
            w = get(feat)
            if w:
                for c, x in enumerate(w):
                    scores[c] += x
        return scores


def _ratios(docs: list[list[int]], positive: list[bool], size: int) -> list[float]:
    """Naive-Bayes log-count ratio of each feature: how much more often it occurs in the class than outside."""
    p, q = [ALPHA] * size, [ALPHA] * size
    for doc, pos in zip(docs, positive):
        counts = p if pos else q
        for j in doc:
            counts[j] += 1
    sp, sq = sum(p), sum(q)
    return [math.log((p[j] / sp) / (q[j] / sq)) for j in range(size)]


def _svm(docs: list[list[int]], values: list[list[float]], y: list[float], size: int,
         seed: int) -> tuple[list[float], float]:
    """L2-regularised L2-loss linear SVM by dual coordinate descent (Hsieh et al., 2008), bias as a feature."""
    w = [0.0] * size
    bias = 0.0
    diag = 1.0 / (2.0 * C)
    q = [sum(v * v for v in vals) + 1.0 + diag for vals in values]
    alpha = [0.0] * len(docs)
    order = list(range(len(docs)))
    rng = random.Random(seed)
    for _ in range(EPOCHS):
        rng.shuffle(order)
        largest = 0.0
        for i in order:
            doc, vals, yi = docs[i], values[i], y[i]
            margin = bias + sum(map(operator.mul, map(w.__getitem__, doc), vals))
            g = yi * margin - 1.0 + diag * alpha[i]
            pg = min(g, 0.0) if alpha[i] == 0.0 else g
            if pg == 0.0:
                continue
            largest = max(largest, abs(pg))
            old = alpha[i]
            alpha[i] = max(old - g / q[i], 0.0)
            step = (alpha[i] - old) * yi
            for j, v in zip(doc, vals):
                w[j] += step * v
            bias += step
        if largest < TOLERANCE:
            break
    return w, bias


def train(docs: Sequence[set[str]], labels: Sequence[str], classes: Sequence[str], *, seed: int = 0) -> LinearModel:
    """NB-SVM (Wang & Manning, 2012) over binary features, one class against the rest."""
    df = Counter(f for doc in docs for f in doc)
    vocabulary = sorted(f for f, n in df.items() if n >= MIN_DF)
    index = {f: j for j, f in enumerate(vocabulary)}
    rows = [[index[f] for f in doc if f in index] for doc in docs]
    size = len(vocabulary)
    weights = [[0.0] * len(classes) for _ in range(size)]
    bias = []
    for c, label in enumerate(classes):
        positive = [lab == label for lab in labels]
        r = _ratios(rows, positive, size)
        w, b = _svm(rows, [[r[j] for j in row] for row in rows], [1.0 if pos else -1.0 for pos in positive],
                    size, seed)
        for j in range(size):
            weights[j][c] = w[j] * r[j]
        bias.append(b)
    kept = {f: [float(f"{x:.4g}") for x in weights[j]] for f, j in index.items() if any(weights[j])}
    return LinearModel(tuple(classes), kept, tuple(float(f"{b:.6g}") for b in bias))
