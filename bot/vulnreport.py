"""The local detector of vulnerability reports: what an issue's words and payloads say, whatever a model says (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.issuetext import IssueText

MAX_TITLE = 300
MAX_BODY = 8_000  # as much as the local triager reads
MAX_ANSWERS = 8_000  # the reporter's answers, together
MAX_COMMENTS = 50  # HTML comments removed from one text (an issue template's own words)

# Every pattern is literal alternatives between word boundaries, or bounded repeats: linear on any input.
# A named kind of vulnerability: decides in a title that reports one, counts once anywhere else.
KINDS: dict[str, re.Pattern[str]] = {name: re.compile(pattern, re.I) for name, pattern in {
    "path traversal": r"\b(?:path|directory|dir) traversal\b|\bzip ?slip\b",
    "injection": r"\b(?:sql|nosql|command|code|shell|os command|ldap|xpath|template|header|crlf|html|xml) "
                 r"injection\b|\bsqli\b",
    "cross-site scripting": r"\bxss\b|\bcross[- ]site scripting\b",
    "request forgery": r"\bcsrf\b|\bxsrf\b|\bssrf\b|\bcross[- ]site request forgery\b|\bserver[- ]side request "
                       r"forgery\b",
    "XML external entities": r"\bxxe\b|\bxml external entit(?:y|ies)\b",
    "code execution": r"\brce\b|\bremote code execution\b|\barbitrary (?:code|command) execution\b|\bexecutes? "
                      r"arbitrary (?:code|commands?)\b|\bweb ?shell\b|\bcode execution\b",
    "authentication bypass": r"\bauth(?:entication|orization)? bypass\b|\bbypass(?:es|ing)? (?:the )?(?:authentication|"
                             r"authorization|login|2fa|mfa|access control|permission checks?)\b|\bprivilege "
                             r"escalation\b|\bescalate privileges\b|\baccount takeover\b|\binsecure direct object "
                             r"references?\b|\bidor\b|\bsession (?:fixation|hijacking)\b",
    "unsafe deserialization": r"\b(?:insecure|unsafe) deseriali[sz]ation\b|\bdeseriali[sz]ation of untrusted\b",
    "open redirect": r"\bopen redirects?\b",
    "prototype pollution": r"\bprototype pollution\b",
    "denial of service": r"\bredos\b|\bregular expression denial of service\b",
    "secrets exposure": r"\b(?:leak(?:s|ed|ing)?|expos(?:es|ed|ing)|disclos(?:es|ed|ing)) (?:the |a |an |all |our |"
                        r"their |its |every |users' |user )?(?:credentials|passwords?|secrets?|api keys?|access keys?|"
                        r"private keys?|session tokens?|auth(?:entication)? tokens?|access tokens?|tokens)\b|"
                        r"\b(?:credentials|passwords?|secrets?|api keys?|access keys?|private keys?|tokens?) (?:is |are |"
                        r"gets? |ends? up )?(?:leaked|exposed|disclosed|(?:logged|printed|written|stored|visible|shown) "
                        r"in (?:plain ?text|clear ?text|(?:the |debug )?logs?|log files?|the url))\b",
    "data exposure": r"\b(?:leak(?:s|ed|ing)?|expos(?:es|ed|ing)) (?:every|all|other|another) (?:users?|customers?|"
                     r"tenants?)(?:'s|')? (?:data|records|reports|files|emails|messages)\b",
    "a vulnerability": r"\bsecurity (?:vulnerability|vulnerabilities|issue|flaw|hole|bug|problem|advisory|risk)\b|"
                       r"\bvulnerab(?:le|ility|ilities)\b",
}.items()}
CVE = re.compile(r"\bcve-\d{4}-\d{4,7}\b", re.I)
# A payload that is one: decides wherever it is.
PAYLOADS: dict[str, re.Pattern[str]] = {name: re.compile(pattern, re.I) for name, pattern in {
    "a traversal payload": r"(?:\.\.[/\\]){2,12}(?:etc|windows|winnt|home|root|proc|boot)\b|\.\.(?:%2f|%5c|%252f)|"
                           r"%2e%2e(?:%2f|%5c|/)|/etc/(?:passwd|shadow)\b|\broot:x:0:0\b|\bwin\.ini\b",
    "a script payload": r"<script>\s?alert\(|\balert\(document\.(?:cookie|domain)\)|\bon(?:error|load)=\s?[\"']?alert\(|"
                        r"\bjavascript:alert\(",
    "an SQL payload": r"'\s?or\s?'?1'?\s?=\s?'?1\b|\bor 1=1\s?--|;\s?drop table\b",
    "a lookup payload": r"\$\{jndi:",
    "a template payload": r"\{\{\s?7\s?\*\s?7\s?\}\}|\$\{7\*7\}",
    "a metadata address": r"\b169\.254\.169\.254\b|\bmetadata\.google\.internal\b",
    "an external entity": r"<!entity [^>]{0,200}\bsystem\b",
    "a deserialization payload": r"!!python/object",
    "a private key": r"-----begin (?:rsa |ec |dsa |openssh |encrypted )?private key-----",
    "a cloud credential": r"\bakia[0-9a-z]{16}\b|\bgh[pousr]_[0-9a-z]{36}\b|\bxox[abprs]-[0-9a-z-]{10,60}\b|"
                          r"\bsk_live_[0-9a-z]{16,64}\b",
    "a shell payload": r"<\?php [^>]{0,100}\b(?:system|exec|passthru|shell_exec)\(",
}.items()}
# What a report of a vulnerability says besides its kind: each counts once.
SIGNS: dict[str, re.Pattern[str]] = {name: re.compile(pattern, re.I) for name, pattern in {
    "a security tag": r"^[ \t]?\[?security\]?[ \t]?[:\]]",  # the title's start: "Security: …", "[security] …"
    "an attacker": r"\battackers?\b|\bmalicious (?:users?|actors?|pages?|sites?|websites?|links?|files?|archives?|"
                   r"requests?|inputs?|payloads?|clients?|servers?|packages?)\b",
    "an exploit": r"\bexploit(?:s|ed|able|ing)?\b|\bproof[- ]of[- ]concept\b|\bpoc\b",
    "access it should not have": r"\bwithout (?:authentication|logging in|a session|being logged in|any credentials)\b|"
                                 r"\b(?:anyone|any (?:logged[- ]in |anonymous |unauthenticated )?user) (?:can|could|"
                                 r"is able to)\b|\banother user's\b|\bother (?:users|tenants|customers)' (?:data|"
                                 r"accounts?|files|records|sessions|widgets|reports)\b|\btake over (?:the|any|an|"
                                 r"their|other) (?:users' )?accounts?\b",
    "a probing payload": r"\bunion (?:all )?select\b|__proto__|\bonerror=",
}.items()}
# A title that asks how to do something or wishes for a protection reports no vulnerability by naming one.
ASKING = re.compile(r"^[ \t]*(?:\[[^\]\n]{0,40}\][ \t]*)?(?:how|is there|are there|what|why|which|can i|can we|"
                    r"could|should|does|do|add|support|implement|provide|allow|enable|feature|request|proposal)\b"
                    r"|\?[ \t]*$|\b(?:protection|mitigation|hardening|prevent(?:ion|ing)?|sanitiz\w*|escaping)\b", re.I)


@dataclass(frozen=True)
class Finding:
    """Whether an issue reads as a vulnerability report, and the cues that say so (names, never the text)."""

    vulnerability: bool
    cues: tuple[str, ...] = ()


def without_comments(text: str) -> str:
    """`text` without its HTML comments (issue templates say "report vulnerabilities privately" in them)."""
    out, start = [], 0
    for _ in range(MAX_COMMENTS):
        opening = text.find("<!--", start)
        if opening < 0:
            break
        out.append(text[start:opening])
        closing = text.find("-->", opening + 4)
        start = len(text) if closing < 0 else closing + 3
    out.append(text[start:])
    return "".join(out)


def detect(issue: IssueText) -> Finding:
    """Whether the issue reports a vulnerability: a kind named in a title that reports it, a CVE id, a payload
    that is one, or two different cues anywhere in its title, body and the reporter's answers."""
    title = issue.title[:MAX_TITLE]
    answers = "\n".join(issue.answers)[:MAX_ANSWERS]
    text = "\n".join((title, without_comments(issue.body[:MAX_BODY]), without_comments(answers)))
    kinds = [name for name, pattern in KINDS.items() if pattern.search(text)]
    in_title = [name for name, pattern in KINDS.items() if pattern.search(title)]
    cve = ["a CVE id"] if CVE.search(text) else []
    payloads = [name for name, pattern in PAYLOADS.items() if pattern.search(text)]
    signs = [name for name, pattern in SIGNS.items() if pattern.search(text)]
    cues = tuple(dict.fromkeys(in_title + kinds + cve + payloads + signs))
    decided = bool(in_title and not ASKING.search(title)) or bool(cve) or bool(payloads)
    return Finding(decided or len(kinds) + len(signs) >= 2, cues)
