"""The local triager: learns issue categories from the repository's closed issues, with built-in rules."""

from __future__ import annotations

import itertools
import math
import random
import re
from collections import Counter, defaultdict
from typing import Any, Iterable, Sequence

from bot import textmodel
from bot.assessment import MAX_QUESTIONS, Assessment
from bot.issuetext import Candidate, IssueText
from bot.questions import (MAX_BODY, MAX_TITLE, bounded, completeness, missing_information, reported, split_markdown,
                           written)

__all__ = ["LocalTriager", "rules_only", "missing_information", "likely_duplicate", "features", "security_report"]

LEARNABLE = ("bug", "feature", "documentation", "question")
FORMAT = "chantbot-local-triager/2"
CONFIDENCE_SCALE = 2.0  # one-vs-rest margins to a softmax: held-out log-loss is lowest near this scale
BLEND = 0.3  # the bag of words' share of the probabilities; the n-grams' is the rest (cross-validated)
TITLE_WEIGHT = 4  # a title says more about the kind of issue than any one body line
MAX_CODE_WORDS = 200  # words kept of one code block
EPOCHS = 3  # passes of the bag of words; six score the same in cross-validation and take longer
RATE = 1.0
RULE_MARGIN = 3.0  # rule score a category without enough history needs to win over the learned model

_TOKEN = re.compile(r"[a-z][a-z0-9_+#']*|\d+(?:\.\d+)+|\d+|[?!]")
_URL = re.compile(r"https?://\S+|www\.\S+")
# Line anchors are followed by `[ \t]`, never `\s`: `^\s*` would run on across blank lines from every line start.
_CHECKBOX = re.compile(r"^[ \t]*[-*][ \t]*\[[ xX]\]", re.M)
_TRACE = re.compile(r"traceback \(most recent call last\)|^[ \t]+at [\w.$<>]+\(|exception|error:|segmentation fault|"
                    r"stack ?trace|panic", re.I | re.M)
_STOP = frozenset("a an the of to in on for and or is it this that be with as at by i we you".split())

# Built-in cues: (pattern, weight, what to call it in a rationale). A title match counts twice.
_CUES: dict[str, tuple[tuple[re.Pattern[str], float, str], ...]] = {
    category: tuple((re.compile(pattern, re.I), weight, name) for pattern, weight, name in cues)
    for category, cues in {
        "bug": (
            (r"\bbug\b", 1.5, "'bug'"), (r"\bcrash", 2, "a crash"), (r"\bsegfault|segmentation fault", 2, "a crash"),
            (r"\bregression\b", 2, "a regression"), (r"\bexception\b|\btraceback\b|\bstack ?trace", 1.5, "an error"),
            (r"\berror\b", 1, "an error"), (r"\bfail(?:s|ed|ing|ure)?\b", 1, "a failure"),
            (r"\bbroken\b|\bdoes(?:n't| not) work|\bnot working\b|\bstopped working\b", 1.5, "'broken'"),
            (r"\bsteps to reproduce\b|\bexpected behaviou?r\b|\bactual behaviou?r\b", 1.5, "a bug template"),
            (r"\bwrong\b|\bincorrect\b|\bunexpected", 1, "wrong behaviour"), (r"\bhangs?\b|\bfreez", 1, "a hang"),
        ),
        "feature": (
            (r"\bfeature request\b|\benhancement\b|\bproposal\b", 2, "a feature request"),
            (r"\bwould be (?:nice|great|good|useful|helpful|cool)\b", 2, "'would be nice'"),
            (r"\badd(?:ing)? (?:support|an? option|the ability)\b|\bsupport for\b", 1.5, "a request for support"),
            (r"\bplease add\b|\bcould you add\b|\bability to\b|\boption to\b", 1.5, "a request to add"),
            (r"\ballow(?:s|ing)? (?:users?|me|us|to)\b|\bsuggest|\bwish\b|\bfeature\b", 1, "a suggestion"),
        ),
        "question": (
            (r"^\s*+(?:how|what|why|where|which|is|are|can|could|does|do|should)\b[^\n]*\?\s*+$", 2, "a question"),
            (r"\bhow (?:do|can|should) (?:i|we|you)\b|\bhow to\b", 2, "'how do I'"),
            (r"\bis (?:it|there) (?:possible|a way)\b|\bany way to\b|\bbest way to\b", 2, "'is there a way'"),
            (r"\?\s*+$", 1, "a question"), (r"\bhelp\b", 1, "'help'"),
            (r"\bquestion\b|\bwondering\b|\bconfused\b|\bclarif", 1.5, "'question'"),
        ),
        "documentation": (
            (r"\bdocumentation\b|\bdocs?\b|\breadme\b|\bdocstring", 1, "documentation"),
            (r"\b(?:docs?|documentation|readme|tutorial)\b[^.\n]{0,30}\b(?:wrong|outdated|missing|unclear|"
             r"incorrect|typo|out of date|mistake|broken)", 2, "documentation at fault"),
            (r"\btypos?\b|\bmisspell|\bspelling\b|\bgrammar\b", 1.5, "a typo"),
            (r"\btutorial\b|\bguide\b|\bbroken link\b|\bdead link\b|\bexample in the\b", 1.5, "a guide"),
        ),
    }.items()
}

# Impact cues, checked in order: (pattern, priority, severity, what to call it).
_IMPACT = (
    (re.compile(r"\bsecurity\b|\bvulnerab|\bcve-\d|\bexploit|\bdata loss\b|\blos(?:e|t|ing) (?:all |my |the )?"
                r"(?:data|work|files)\b|\bdata corruption\b|\bcorrupt(?:s|ed|ing)? (?:the |my )?(?:data|database|"
                r"files?|wallet)\b|\ball users\b|\beveryone\b|\bproduction (?:is )?down\b", re.I),
     "critical", "blocking", "security or data loss"),
    (re.compile(r"\bcrash|\bsegfault|segmentation fault|\bregression\b|\bhangs?\b|\bfreez|\bdeadlock|\bunusable\b|"
                r"\bcannot (?:start|open|install|build|use)\b|\bblock(?:s|ing|er)\b|\bno longer works?\b|"
                r"\bstopped working\b", re.I),
     "high", "blocking", "a crash, hang or regression"),
    (re.compile(r"\btypos?\b|\bcosmetic\b|\bmisaligned\b|\balignment\b|\bspelling\b|\bwording\b|\bpadding\b|"
                r"\bcolou?r\b|\bicon\b|\bwhitespace\b", re.I),
     "low", "cosmetic", "a cosmetic problem"),
)
# A vulnerability reported in public. Strong cues say so in any issue; weak ones (an attack's name) only in a
# bug report, since "how do I prevent XSS?" is a question. Literal alternatives between word boundaries: linear.
_SECURITY_STRONG = re.compile(
    r"\b(?:cve(?:-\d{4}-\d{3,7})?|vulnerab(?:le|ility|ilities)|exploit(?:s|ed|able|ing)?|rce|remote code execution|"
    r"arbitrary (?:code|command) execution|privilege escalation|security (?:vulnerability|issue|flaw|hole|bug|"
    r"advisory|problem)|auth(?:entication|orization)? bypass)\b", re.I)
_SECURITY_WEAK = re.compile(
    r"\b(?:xss|csrf|ssrf|xxe|sqli|cross[- ]site (?:scripting|request forgery)|(?:sql|command|code|shell|os command|"
    r"ldap|xpath|template|header|html|script|crlf|prompt) injection|(?:path|directory) traversal|zip ?slip|"
    r"open redirect)\b", re.I)
_TITLE_TAG = re.compile(r"^\s*(?:\[[^\]]{1,40}\]\s*|(?:bug|feature(?: request)?|question|docs?|enhancement|"
                        r"request)\s*[:\-]\s*)+", re.I)
_MARKUP = re.compile(r"[`*<>|]+|~~|(?<!\w)_+|(?<!_)_++(?!\w)")
_SUMMARY_LEAD = {"bug": "Bug report", "feature": "Feature request", "documentation": "Documentation",
                 "question": "Question", "duplicate": "Likely duplicate"}


def _words(text: str) -> list[str]:
    tokens = []
    for token in _TOKEN.findall(text.lower()):
        if token[0].isdigit():
            token = "<ver>" if "." in token else "<num>"
        tokens.append(token.strip("'"))
    return [t for t in tokens if t]


def _grams(tokens: list[str], prefix: str) -> list[str]:
    return [prefix + t for t in tokens if t not in _STOP] + [f"{prefix}{a}_{b}" for a, b in zip(tokens, tokens[1:])]


def features(title: str, body: str) -> Counter[str]:
    """Word unigrams and bigrams of title (weighted up) and body, plus Markdown structure cues.

    Issue templates are kept as features: their headings, comments and checklists say a lot about the kind
    of issue. Code is reduced to a marker, its language, a stack-trace marker and its first words.
    """
    feats: Counter[str] = Counter()
    title_words = _words(title[:MAX_TITLE])
    for feat in _grams(title_words, "t:"):
        feats[feat] += TITLE_WEIGHT
    feats.update(_grams(title_words, ""))
    doc = split_markdown((body or "")[:MAX_BODY])
    for comment in doc.comments:
        feats.update("c:" + w for w in _words(comment) if w not in _STOP)
    for info, code in doc.code:
        feats["<code>"] += 1
        if info:
            feats[f"<lang:{info[:12]}>"] += 1
        if _TRACE.search(code):
            feats["<trace>"] += 1
        feats.update("k:" + w for w in _words(code)[:MAX_CODE_WORDS] if w not in _STOP)
    prose = _URL.sub(" <url> ", doc.prose)
    if _TRACE.search(prose):
        feats["<trace-any>"] += 1
    feats.update("h:" + "_".join(_words(heading)[:6]) for heading in doc.headings)
    if _CHECKBOX.search(prose):
        feats["<checklist>"] += 1
    body_words = _words(prose)
    feats.update(_grams(body_words, ""))
    if len(body_words) < 15:
        feats["<short-body>"] += 1
    return feats


def _vector(feats: Counter[str]) -> dict[str, float]:
    """Log-scaled counts, unit length."""
    scaled = {f: 1.0 + math.log(n) for f, n in feats.items()}
    norm = math.sqrt(sum(v * v for v in scaled.values())) or 1.0
    return {f: v / norm for f, v in scaled.items()}


def _softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def _train(vectors: list[dict[str, float]], labels: list[int], k: int, seed: int = 0) -> dict[str, list[float]]:
    """Multinomial logistic regression by averaged stochastic gradient descent."""
    weights: defaultdict[str, list[float]] = defaultdict(lambda: [0.0] * k)
    lagged: defaultdict[str, list[float]] = defaultdict(lambda: [0.0] * k)  # step-weighted updates, for averaging
    order = list(range(len(vectors)))
    rng = random.Random(seed)
    step = 1
    for _ in range(EPOCHS):
        rng.shuffle(order)
        for i in order:
            rows = [(weights[f], lagged[f], v) for f, v in vectors[i].items()]
            scores = [0.0] * k
            for w, _, v in rows:
                for c in range(k):
                    scores[c] += w[c] * v
            grad = _softmax(scores)
            grad[labels[i]] -= 1.0
            for w, u, v in rows:
                for c in range(k):
                    g = RATE * grad[c] * v
                    w[c] -= g
                    u[c] -= step * g
            step += 1
    return {f: [w[c] - lagged[f][c] / step for c in range(k)] for f, w in weights.items()}


def rule_scores(title: str, body: str) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Built-in cue score of every learnable category, and the cues that fired."""
    title, doc = (title or "")[:MAX_TITLE], split_markdown(body)
    prose = written(doc.prose)
    code = " ".join(text for _, text in doc.code)
    scores = {c: 0.0 for c in LEARNABLE}
    fired: dict[str, list[str]] = {c: [] for c in LEARNABLE}
    for category, cues in _CUES.items():
        for pattern, weight, name in cues:
            hits = 2 * bool(pattern.search(title)) + bool(pattern.search(prose))
            if hits:
                scores[category] += weight * hits
                if name not in fired[category]:
                    fired[category].append(name)
    if _TRACE.search(code):
        scores["bug"] += 3
        fired["bug"].append("a stack trace")
    return scores, fired


def _in_title(category: str, title: str) -> bool:
    """Whether a built-in cue of `category` is in the title: where the learned model knows other categories, a
    category it never saw takes an issue only on the reporter's own summary (a bug report that links to the
    documentation names it in its body, a documentation report names it in its title)."""
    return any(pattern.search((title or "")[:MAX_TITLE]) for pattern, _, _ in _CUES.get(category, ()))


class LocalTriager:
    """Classifies and assesses issues without a language model."""

    def __init__(self, model: textmodel.LinearModel | None = None, words: dict[str, list[float]] | None = None,
                 trained_on: int = 0) -> None:
        self.model = model  # NB-SVM over the raw text's word n-grams
        self.words = words or {}  # logistic regression over a Markdown-aware bag of words, same classes
        self.trained_on = trained_on

    @property
    def classes(self) -> tuple[str, ...]:
        """The categories the model learned (none without history)."""
        return self.model.classes if self.model else ()

    @classmethod
    def from_history(cls, examples: Iterable[tuple[str, str, str]], *, min_per_class: int = 5) -> "LocalTriager":
        """Learn from (title, body, category) of closed issues; thin categories fall back to the rules."""
        rows = [(t or "", b or "", c) for t, b, c in examples if c in LEARNABLE]
        counts = Counter(c for _, _, c in rows)
        classes = tuple(c for c in LEARNABLE if counts[c] >= max(1, min_per_class))
        if len(classes) < 2:
            return cls()
        rows = [row for row in rows if row[2] in classes]
        model = textmodel.train([textmodel.ngrams(t, b) for t, b, _ in rows], [c for _, _, c in rows], classes)
        feats = [features(t, b) for t, b, _ in rows]
        weights = _train([_vector(f) for f in feats], [classes.index(c) for _, _, c in rows], len(classes))
        seen = Counter(f for doc in feats for f in doc)
        # A feature seen in one issue only cannot generalise; dropping it keeps the stored model small.
        words = {f: [round(x, 4) for x in w] for f, w in weights.items() if seen[f] >= 2}
        return cls(model, words, len(rows))

    def probabilities(self, title: str, body: str) -> dict[str, float]:
        """The learned models' probability of each learned category (empty without history)."""
        if not self.model:
            return {}
        ngrams = _softmax([CONFIDENCE_SCALE * x for x in self.model.scores(textmodel.ngrams(title, body))])
        scores = [0.0] * len(self.classes)
        for f, v in _vector(features(title, body)).items():
            w = self.words.get(f)
            if w:
                for c, x in enumerate(w):
                    scores[c] += x * v
        bag = _softmax(scores)
        return {c: BLEND * b + (1 - BLEND) * n for c, b, n in zip(self.classes, bag, ngrams)}

    def _decide(self, title: str, body: str) -> tuple[str, float, str]:
        """(category, confidence, what decided it): the learned model, or the rules for unlearned categories."""
        probabilities = self.probabilities(title, body)
        if len(probabilities) < len(LEARNABLE):
            scores, fired = rule_scores(title, body)
            top, second = sorted(LEARNABLE, key=scores.__getitem__, reverse=True)[:2]
            if not probabilities or (top not in probabilities and _in_title(top, title)
                                     and scores[top] >= max(RULE_MARGIN, 1.5 * scores[second])):
                if scores[top] == 0:
                    return "bug", 0.25, "no cue, so the default"
                confidence = (scores[top] + 1) / (sum(scores.values()) + len(LEARNABLE))
                return top, round(confidence, 3), f"built-in cues ({', '.join(fired[top][:3])})"
        best = max(probabilities, key=probabilities.__getitem__)
        return best, round(probabilities[best], 3), f"the model learned from {self.trained_on} closed issues"

    def classify(self, title: str, body: str) -> tuple[str, float]:
        """(category, confidence in 0..1); never `duplicate`, which needs candidates."""
        category, confidence, _ = self._decide(title, body)
        return category, confidence

    def assess(self, issue: IssueText, candidates: Sequence[Candidate] = ()) -> Assessment:
        """A complete assessment of `issue`, inside the vocabulary."""
        issue = bounded(issue)
        category, confidence, decided_by = self._decide(issue.title, issue.body)
        missing = missing_information(issue, category)
        prose = "\n".join(doc.prose for doc in reported(issue))
        priority, severity, impact = _impact(f"{issue.title}\n{prose}", category)
        security = security_report(issue, category)
        original = likely_duplicate(issue, candidates)
        if original is not None:
            return Assessment(
                category="duplicate", recommendation="defer", summary=summary(issue.title, "duplicate"),
                priority=priority, severity=severity, completeness=completeness(issue, missing),
                duplicate_of=original.number, triager="local", security=security,
                rationale=f"Its title and description nearly match #{original.number}"
                          + (f" (similarity {original.score:.2f})." if original.score else "."))
        questions = tuple(question for _, question in missing)[:MAX_QUESTIONS]
        rationale = f"Classified as {category} ({confidence:.0%}) from {decided_by}"
        if impact:
            rationale += f"; priority {priority} because of {impact}"
        if missing:
            rationale += f"; missing {', '.join(what for what, _ in missing)}"
        return Assessment(
            category=category, recommendation=_recommend(category, missing), summary=summary(issue.title, category),
            priority=priority, severity=severity, completeness=completeness(issue, missing),
            missing_information=tuple(what for what, _ in missing), questions=questions,
            rationale=rationale + ".", triager="local", security=security)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form of the model, to store it."""
        model = self.model or textmodel.LinearModel((), {}, ())
        return {"format": FORMAT, "classes": list(model.classes), "trained_on": self.trained_on,
                "bias": list(model.bias), "ngrams": model.weights, "words": self.words}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LocalTriager":
        """The triager `to_dict` described; raises ValueError for anything else."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError("not a chantbot local triager model")
        try:
            classes = tuple(str(c) for c in data.get("classes") or ())
            bias = tuple(float(x) for x in data.get("bias") or ())
            ngrams, words = ({str(f): [float(x) for x in w] for f, w in (data.get(key) or {}).items()}
                             for key in ("ngrams", "words"))
            trained_on = int(data.get("trained_on", 0))
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValueError("unreadable local triager model") from exc
        if len(classes) == 1 or any(c not in LEARNABLE for c in classes) or len(bias) != len(classes) or \
                any(len(w) != len(classes) for w in [*ngrams.values(), *words.values()]):
            raise ValueError("inconsistent local triager model")
        return cls(textmodel.LinearModel(classes, ngrams, bias) if classes else None, words, trained_on)


def security_report(issue: IssueText, category: str) -> bool:
    """Whether the issue reports a security vulnerability, by the words it uses.

    A strong cue in the title, a CVE id, or two strong cues in the prose and answers say so; an attack's
    name says so in a bug report. One "vulnerability" in a body is often an issue template's own text.
    """
    issue = bounded(issue)
    prose = "\n".join(doc.prose for doc in reported(issue))
    if _SECURITY_STRONG.search(issue.title) or (category == "bug" and _SECURITY_WEAK.search(issue.title)):
        return True
    strong = {m.group(0).lower() for m in itertools.islice(_SECURITY_STRONG.finditer(prose), 20)}
    return (len(strong) >= 2 or any(cue.startswith("cve-") for cue in strong)
            or (category == "bug" and bool(_SECURITY_WEAK.search(prose))))


def rules_only() -> LocalTriager:
    """A triager with no history: built-in cues only."""
    return LocalTriager()


def _impact(text: str, category: str) -> tuple[str, str | None, str]:
    """(priority, severity, the cue that set them) from what the issue says."""
    for pattern, priority, severity, name in _IMPACT:
        if pattern.search(text):
            if category == "bug":
                return priority, severity, name
            if priority == "critical":
                return "high", None, name
            break
    if category == "bug":
        return "medium", "degraded", ""
    return "low", None, ""


def _recommend(category: str, missing: list[tuple[str, str]]) -> str:
    gaps = {what for what, _ in missing}
    if category == "bug":
        return "needs-info" if gaps & {"version", "steps to reproduce"} else "needs-reproduction"
    if category == "feature":
        return "needs-info" if "use case" in gaps else "ready-for-research"
    if category == "question":
        return "needs-info" if missing else "defer"
    return "ready-for-research"


def summary(title: str, category: str) -> str:
    """A short neutral sentence from the title, without markup or template tags."""
    title = (title or "")[:MAX_TITLE]
    text = " ".join(_MARKUP.sub(" ", _TITLE_TAG.sub("", title)).split()).rstrip(" .?!:;,")
    if len(text) > 160:
        text = text[:157].rsplit(" ", 1)[0] + "..."
    text = text[:1].upper() + text[1:] if text else "No title given"
    stop = "?" if (title or "").rstrip().endswith("?") else "."
    return f"{_SUMMARY_LEAD[category]}: {text}{stop}"


def _shingles(text: str, n: int) -> set[tuple[str, ...]]:
    tokens = re.findall(r"[a-z0-9]+", text.lower())
    return {tuple(tokens[i:i + n]) for i in range(max(1, len(tokens) - n + 1))} if tokens else set()


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def likely_duplicate(issue: IssueText, candidates: Sequence[Candidate]) -> Candidate | None:
    """The candidate this issue nearly repeats (same title and body, or same body), else None.

    Conservative on purpose: a template title shared by distinct issues is not enough.
    """
    issue = bounded(issue)
    title = _shingles(issue.title, 1)
    body = _shingles(split_markdown(issue.body).prose, 3)
    best: tuple[float, int, Candidate] | None = None
    for candidate in candidates:
        if candidate.number == issue.number:
            continue
        title_sim = _jaccard(title, _shingles(candidate.title[:MAX_TITLE], 1))
        candidate_body = candidate.body[:MAX_BODY]
        other = _shingles(split_markdown(candidate_body).prose, 3)
        body_sim = _jaccard(body, other)
        thin = len(body) < 5 or len(other) < 5  # too little body to compare
        # A shared template title alone is not enough; the same title with bodies that talk about
        # the same things (word overlap, not phrasing) is.
        words_sim = _jaccard(_shingles(issue.body, 1), _shingles(candidate_body, 1))
        same = (title_sim >= 0.9 and len(title) >= 3 and (thin or body_sim >= 0.5 or words_sim >= 0.15)) or \
            (title_sim >= 0.5 and not thin and body_sim >= 0.85)
        if same:
            key = (title_sim + body_sim, -candidate.number, candidate)
            if best is None or key[:2] > best[:2]:
                best = key
    return best[2] if best else None

