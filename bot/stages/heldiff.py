"""What a maintainer reads of held commits before `/ok-to-test`: what runs at build time, the scan, the diff (pure)."""

from __future__ import annotations

import bisect
import difflib
import re
from collections import Counter
from dataclasses import dataclass
from typing import Mapping

from bot.sanitize import code_span
from bot.stages.documents import fenced

# What a flag says (Flag.why): the scan's words, which tests and the runner may match on.
BUILD_TIME = "runs at CI or build time"
ENVIRONMENT = "reads the environment"
CREDENTIALS = "reads credential files"
NETWORK = "opens a socket or URL"
PROCESS = "starts a process"
OBFUSCATED = "decodes or loads code at run time"
BLOB = "long encoded blob"
HIDDEN = "hidden or control characters"
LONG_LINE = "line too long to scan whole"
BINARY = "binary-looking content, not scanned"
UNSCANNED = "too large to scan whole"
UNREAD = "not scanned: too much changed to scan here"
MORE = "more flagged lines than listed"

# What the maintainer reads (chantbot's own words; paths and lines from the agent only in code spans or fences).
BUILD_HEADING = "**Runs at CI or build time**: read these first."
NO_BUILD = "No changed file runs at CI or build time."
FLAG_HEADING = "**Lines a static scan points at** (it informs your reading; it does not replace it):"
NO_FLAGS = ("A static scan of the added lines found nothing that reads the environment or credentials, opens a "
            "socket or URL, starts a process, decodes code at run time or carries a long encoded blob. It informs "
            "your reading; it does not replace it.")
SUMMARY = "The diff: {files}, +{added:,} −{removed:,}{partly}"
SUMMARY_PART = "The diff of {shown:,} of {files} (the others are listed), +{added:,} −{removed:,}{partly}"
PARTLY_COUNTED = " in the files read whole"
LISTED = "Listed, not shown as a diff:"
NO_ROOM = ": its diff would not fit in this comment"
EMPTY = ": an empty file"
FINAL_NEWLINE = ": only the newline at its end changed"
MORE_ENTRIES = "- … and {count:,} more"
UNREAD_FILES = "- {count:,} files were not read or scanned here: too much changed (they are listed under the diff)"
NO_CHANGES = "No changes."
MARK = "⚠️ "

MAX_FILES = 500  # files read; more are listed, not read
MAX_READ_TOTAL = 4 * 1024 * 1024  # characters read in all (both sides of every file)
MAX_KEY = 1_000  # characters of a path that are looked at
MAX_READ = 256 * 1024  # characters of one side of a file that are read (a run writes at most 256 KiB a file)
MAX_LINE = 4_000  # characters of one line the scan reads
MAX_DIFF_LINES = 20_000  # lines difflib compares in all (its matcher is worse than linear)
MAX_SHOWN_LINE = 1_000  # characters of one line shown in the diff
MAX_FLAGS_PER_FILE = 50
MAX_LISTED = 40  # entries in each list above the diff
MAX_FILES_LISTED = 300  # files listed instead of diffed
BLOB_RUN = 200  # base64 or hex characters in a row
MIN_LIMIT = 2_000

# What the scan looks for, by reason: small patterns whose first character is taken literally (the rest is a
# regex), optionally after `\b` (a word starts there) or `!.` (no word character or dot before it). Each
# reason's patterns make one flat alternation whose branches all start with a literal, so the regex engine skips
# to the few places where one can start, and a branch costs O(1) where it tries: no nested or competing
# quantifiers, every gap bounded.
_TERMS = {
    ENVIRONMENT: (r"\benviron\b", r"\bgetenv\b", r"process\.env\b", r"\bENV\[", r"\bprintenv\b",
                  r"/proc/self/environ", r"/proc/[0-9]{1,7}/environ",
                  r"$\{?(?:GITHUB|ANTHROPIC|ACTIONS|RUNNER|NPM|PYPI|TWINE|AWS|GH|GITLAB|CHANTBOT)_",
                  r"$\{\{[ \t]{0,4}(?:secrets|env)\.", r"TOKEN\b", r"SECRET", r"PASSWORD", r"PASSWD", r"API_KEY",
                  r"PRIVATE_KEY", r"CREDENTIALS"),
    CREDENTIALS: (r".ssh\b", r".netrc\b", r".pypirc\b", r".git-credentials\b", r".aws/credentials\b",
                  r".docker/config\.json", r".kube/config\b", r".npmrc\b", r".gnupg\b", r"\bid_rsa\b",
                  r"\bid_ed25519\b", r".config/gh\b", r".config/gcloud\b"),
    NETWORK: (r"\bsocket\b", r"\burllib[0-9]?\b", r"\bimport requests\b",
              r"\brequests\.(?:get|post|put|patch|delete|head|request|Session)\b", r"\bhttp\.client\b",
              r"\bhttplib[0-9]?\b", r"\bhttpx\b", r"\baiohttp\b", r"\burlopen\b", r"\bcurl\b", r"\bwget\b",
              r"\bfetch[ \t]{0,4}\(", r"https?://", r"HTTPS?://", r"\bXMLHttpRequest\b", r"\bWebSocket\b",
              r"\bsmtplib\b", r"\bftplib\b", r"\btelnetlib\b", r"\bparamiko\b", r"/dev/tcp/", r"/dev/udp/",
              r"\bnetcat\b", r"\bncat\b", r"\bInvoke-WebRequest\b"),
    PROCESS: (r"\bsubprocess\b", r"\bos\.(?:system|popen|exec[lv]p?e?|spawn[lv]p?e?|fork|posix_spawnp?)\b",
              r"\bpty\b", r"!.eval[ \t]{0,4}\(", r"!.exec[ \t]{0,4}\(", r"\bchild_process\b", r"\bPopen\b",
              r"\bcreate_subprocess_", r"\bshell=True\b", r"\bexecSync\b", r"\bspawnSync\b",
              r"\bRuntime\.getRuntime\b", r"\bos/exec\b", r"\bcommands\.getoutput\b"),
    OBFUSCATED: (r"\bcodecs\.decode\b", r"\bmarshal\.loads?\b", r"\bpickle\.loads?\b", r"!.compile[ \t]{0,4}\(",
                 r"\burlsafe_b64decode\b", r"\bb64decode\b", r"\bb32decode\b", r"\bb16decode\b", r"\ba85decode\b",
                 r"\bb85decode\b", r"\bfromhex\b", r"\bunhexlify\b", r"\bdecompress\b", r"\b__import__\b",
                 r"\b__builtins__\b", r"\bimportlib\b", r"\bctypes\b",
                 r"\batob[ \t]{0,4}\(", r"\bfromCharCode\b", r"\bnew Function\b", r"\brot_?13\b",
                 r"\x[0-9a-fA-F]{2}(?:\\x[0-9a-fA-F]{2}){7}"),
}


def _literal_first(term: str) -> str:
    r"""A term as a branch that starts with its first character, literally: `\bword` becomes `w(?<!\ww)ord`."""
    if term.startswith(("\\b", "!.")):
        before = r"\w" if term.startswith("\\b") else r"[.\w]"
        first, rest = term[2], term[3:]
        return f"{re.escape(first)}(?<!{before}{re.escape(first)}){rest}"
    return re.escape(term[0]) + term[1:]


_SCANS = tuple((why, re.compile("|".join(_literal_first(term) for term in terms))) for why, terms in _TERMS.items())
_LINE_WHYS = (ENVIRONMENT, CREDENTIALS, NETWORK, PROCESS, OBFUSCATED, BLOB, HIDDEN, LONG_LINE)
# A run of base64 or hex: the look-behind lets a match start only where a run starts, so each run is read once.
_BLOB = re.compile(rf"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/=_-]{{{BLOB_RUN},}}")
# Bidi and invisible format characters, Unicode tags, and control characters other than tab and newline.
_HIDDEN_CLASS = ("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb"
                 "\U000e0000-\U000e007f\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_HIDDEN = re.compile(_HIDDEN_CLASS + "|\r")
_HIDDEN_IN_TEXT = re.compile(_HIDDEN_CLASS + "|\r(?!\n|\\Z)")  # a CRLF ending is no hidden character

# Files that run at CI, build or import time, and why (names compared lower-cased).
_BY_NAME = {
    "conftest.py": "pytest runs it before the tests beside and below it",
    "sitecustomize.py": "Python runs it when the interpreter starts",
    "usercustomize.py": "Python runs it when the interpreter starts",
    "setup.py": "runs when the package is built or installed",
    "setup.cfg": "configures how the package is built, installed and tested",
    "pyproject.toml": "configures the build, the installation and the tools (pytest's options and plugins)",
    "tox.ini": "tox runs the commands it names",
    "noxfile.py": "nox runs it",
    "pytest.ini": "sets pytest's options and plugins",
    "manifest.in": "decides what the package build includes",
    "makefile": "make runs its commands", "gnumakefile": "make runs its commands",
    "justfile": "just runs its commands", "rakefile": "rake runs it",
    "package.json": "npm runs its scripts when installing and testing",
    ".npmrc": "configures npm's installs", ".yarnrc.yml": "configures yarn's installs",
    ".gitlab-ci.yml": "a CI configuration (GitLab)", ".travis.yml": "a CI configuration (Travis)",
    "azure-pipelines.yml": "a CI configuration (Azure Pipelines)", "jenkinsfile": "a CI configuration (Jenkins)",
    "appveyor.yml": "a CI configuration (AppVeyor)", ".appveyor.yml": "a CI configuration (AppVeyor)",
    ".drone.yml": "a CI configuration (Drone)", "bitbucket-pipelines.yml": "a CI configuration (Bitbucket)",
    ".woodpecker.yml": "a CI configuration (Woodpecker)", "cloudbuild.yaml": "a CI configuration (Cloud Build)",
    "cloudbuild.yml": "a CI configuration (Cloud Build)", ".cirrus.yml": "a CI configuration (Cirrus)",
    "codefresh.yml": "a CI configuration (Codefresh)",
    ".pre-commit-config.yaml": "pre-commit runs the hooks it names",
    "dockerfile": "runs when the image is built", "containerfile": "runs when the image is built",
    "docker-compose.yml": "starts containers", "docker-compose.yaml": "starts containers",
    "mkdocs.yml": "configures the documentation build (its hooks run Python)",
    ".readthedocs.yaml": "the documentation build's commands", ".readthedocs.yml": "the documentation build's commands",
    "build.rs": "cargo runs it when building", "cmakelists.txt": "runs when the project is built",
    "meson.build": "runs when the project is built", "build.gradle": "runs when the project is built",
    "build.gradle.kts": "runs when the project is built", "pom.xml": "runs when the project is built",
    ".envrc": "direnv runs it when a shell enters the folder",
    **dict.fromkeys(("pipfile", "pipfile.lock", "poetry.lock", "uv.lock", "package-lock.json", "yarn.lock",
                     "pnpm-lock.yaml"), "the test set-up installs what it names"),
}
_BY_FOLDER = (  # (folder prefix, lower-cased, ending in "/"), why
    (".github/workflows/", "a GitHub Actions workflow"), (".github/actions/", "a GitHub Actions action"),
    (".github/chantbot.yml", "chantbot's configuration here (the sandbox's set-up and test commands)"),
    (".circleci/", "a CI configuration (CircleCI)"), (".buildkite/", "a CI configuration (Buildkite)"),
    (".woodpecker/", "a CI configuration (Woodpecker)"), (".husky/", "git hooks npm installs"),
    (".devcontainer/", "runs when a development container is built"),
    (".chant/prompts/", "a prompt chantbot's agents follow"),
)
_TEST_FOLDERS = frozenset({"test", "tests", "testing"})
_DOC_FOLDERS = frozenset({"doc", "docs", "documentation", "sphinx"})


@dataclass(frozen=True)
class Flag:
    """Something a maintainer should look at in a held change."""

    path: str
    line: int  # line number in the new file (0: the whole file)
    why: str  # one of the names above (BUILD_TIME, ENVIRONMENT, …)


@dataclass(frozen=True)
class _File:
    """One changed file as far as it was read: its added lines (numbered in the new text) and its counts."""

    path: str
    old: str | None
    new: str | None  # None: deleted
    build: str | None  # why it runs at CI or build time
    state: str = "read"  # read | large (only the start read) | binary | unread (the budget was spent)
    added: tuple[tuple[int, str], ...] = ()
    removed: int = 0
    removed_chars: int = 0

    @property
    def status(self) -> str:
        return "deleted" if self.new is None else "new" if self.old is None else "changed"

    @property
    def counts(self) -> tuple[int, int] | None:
        """Lines added and removed (None: not read whole)."""
        return (len(self.added), self.removed) if self.state == "read" else None


def runs_at_build_time(path: str) -> str | None:
    """Why the file at `path` runs at CI, build, install or import time (its contents then run before any
    test is chosen, or configure what runs), or None."""
    key = (path or "")[:MAX_KEY].lower()
    parts = key.split("/")
    name = parts[-1]
    for prefix, why in _BY_FOLDER:
        if key.startswith(prefix):
            return why
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name.endswith(".pth"):
        return "Python runs its import lines when the interpreter starts"
    if name.startswith(("requirements", "constraints")) and name.endswith((".txt", ".in")):
        return _BY_NAME["uv.lock"]
    if name.endswith(".mk") or name.startswith(("dockerfile.", "containerfile.")) or name.endswith(".dockerfile"):
        return _BY_NAME["makefile"] if name.endswith(".mk") else _BY_NAME["dockerfile"]
    folders = parts[:-1]
    if name == "__init__.py" and any(f in _TEST_FOLDERS or f.startswith("test_") or f.endswith(("_test", "_tests"))
                                     for f in folders):
        return "pytest imports it when collecting the tests below it"
    if name == "conf.py" and (not folders or any(f in _DOC_FOLDERS for f in folders)):
        return "Sphinx runs it when the documentation is built"
    return None


def _files(base: Mapping[str, str | None], changes: Mapping[str, str | None]) -> list[_File]:
    """The changed files, those that run at CI or build time first, then by path; each read within the bounds."""
    found = []
    for path, new in changes.items():
        old = base.get(path) if isinstance(path, str) else None
        old = old if isinstance(old, str) else None
        if isinstance(path, str) and (new is None or isinstance(new, str)) and new != old:
            found.append((runs_at_build_time(path), path, old, new))
    found.sort(key=lambda item: (item[0] is None, item[1][:MAX_KEY]))
    files, budget = [], MAX_READ_TOTAL
    for i, (build, path, old, new) in enumerate(found):
        if i >= MAX_FILES or budget <= 0:
            files.append(_File(path, old, new, build, "unread"))
            continue
        if "\0" in (old or "")[:8192] or "\0" in (new or "")[:8192]:
            files.append(_File(path, old, new, build, "binary"))
            continue
        old_cut, new_cut = (old or "")[:MAX_READ], (new or "")[:MAX_READ]
        budget -= len(old_cut) + len(new_cut)
        added, removed = _added(old_cut, new_cut), _added(new_cut, old_cut)
        large = len(old or "") > MAX_READ or len(new or "") > MAX_READ
        files.append(_File(path, old, new, build, "large" if large else "read", tuple(added), len(removed),
                           sum(len(line) + 2 for _, line in removed)))
    return files


def _lines(text: str | None) -> list[str]:
    if not text:
        return []
    return (text[:-1] if text.endswith("\n") else text).split("\n")


def _added(old: str, new: str) -> list[tuple[int, str]]:
    """(number, line) of each line of `new` that `old` does not hold as often: a line kept or moved is not
    added, a line copied is."""
    kept = Counter(_lines(old))
    added = []
    for number, line in enumerate(_lines(new), 1):
        if kept[line] > 0:
            kept[line] -= 1
        else:
            added.append((number, line))
    return added


def _line_flags(path: str, added: tuple[tuple[int, str], ...]) -> list[Flag]:
    """The flags of the first MAX_FLAGS_PER_FILE flagged lines among `added` (then MORE when there are more).

    The added lines, each cut to MAX_LINE, are joined and each pattern searches the whole text, once per line
    at most: after a match it goes on from the next line, and it stops once more lines are flagged than can
    be listed."""
    cuts = [line[:MAX_LINE] for _, line in added]
    text = "\n".join(cuts)
    starts, pos = [], 0
    for cut in cuts:
        starts.append(pos)
        pos += len(cut) + 1
    whys: dict[int, set[str]] = {}

    def search(why: str, pattern: re.Pattern[str], start: int = 0) -> None:
        found = 0
        while found <= MAX_FLAGS_PER_FILE and (m := pattern.search(text, start)) is not None:
            index = bisect.bisect_right(starts, m.start()) - 1
            whys.setdefault(index, set()).add(why)
            found += 1
            start = starts[index + 1] if index + 1 < len(starts) else len(text)

    for why, pattern in _SCANS:
        search(why, pattern)
    search(BLOB, _BLOB)
    search(HIDDEN, _HIDDEN_IN_TEXT, 1 if added and added[0][0] == 1 and text.startswith("\ufeff") else 0)
    for index in [i for i, cut in enumerate(cuts) if len(cut) == MAX_LINE and len(added[i][1]) > MAX_LINE]:
        whys.setdefault(index, set()).add(LONG_LINE)
    flagged = sorted(whys)
    flags = [Flag(path, added[i][0], why) for i in flagged[:MAX_FLAGS_PER_FILE] for why in _LINE_WHYS
             if why in whys[i]]
    return flags + ([Flag(path, 0, MORE)] if len(flagged) > MAX_FLAGS_PER_FILE else [])


def _scan(files: list[_File]) -> list[Flag]:
    flags: list[Flag] = []
    for f in files:
        if f.build:
            flags.append(Flag(f.path, 0, BUILD_TIME))
        if f.new is None:
            continue
        if f.state in ("binary", "unread"):
            flags.append(Flag(f.path, 0, BINARY if f.state == "binary" else UNREAD))
            continue
        if f.state == "large":
            flags.append(Flag(f.path, 0, UNSCANNED))
        flags += _line_flags(f.path, f.added)
    return flags


def scan(base: Mapping[str, str | None], changes: Mapping[str, str | None]) -> list[Flag]:
    """What a maintainer should look at first in `changes` (path → new text, None: deleted) over `base`
    (path → the text before): files that run at CI or build time, and the added lines that read the
    environment or credentials, open sockets or URLs, start processes, decode code or carry long encoded
    blobs. A static scan of untrusted text within fixed bounds (what it could not read is flagged as such):
    it informs a person, it does not decide anything."""
    return _scan(_files(base, changes))


def _visible(line: str) -> str:
    """A line as the diff shows it: cut, with hidden and control characters spelled out (but a CRLF ending)."""
    cut = line[:MAX_SHOWN_LINE]
    cut = cut[:-1] if cut.endswith("\r") else cut
    shown = _HIDDEN.sub(lambda m: f"⟨U+{ord(m.group(0)):04X}⟩", cut) if _HIDDEN.search(cut) else cut
    return shown + (f" ⟨… {len(line) - MAX_SHOWN_LINE:,} more characters⟩" if len(line) > MAX_SHOWN_LINE else "")


def _span(text: str, limit: int = 200) -> str:
    """Text from the change as a code span; one that holds `<!--` or `-->` is padded with a space each side
    (GitHub shows neither), so that even a reader that drops HTML comments before pairing backticks never
    finds an empty span there."""
    inner = code_span(text, limit)[1:-1]
    return "`(blank)`" if not inner else f"` {inner} `" if "<!--" in inner or "-->" in inner else f"`{inner}`"


def _label(f: _File, note: str = "") -> str:
    """`path` (status, +a −r): the path only in a code span, then chantbot's own words."""
    if f.state == "binary":
        detail = "binary-looking, not shown"
    elif f.state == "unread":
        detail = "not read here: too much changed"
    elif f.state == "large":
        detail = f"too large to diff here: {max(len(f.old or ''), len(f.new or '')):,} characters"
    else:
        detail = f"+{len(f.added)} −{f.removed}"
    return f"{MARK if f.build else ''}{_span(f.path)} ({f.status}, {detail}){note}"


def _diff(f: _File) -> str | None:
    """The unified diff of one file in a fence no line of it can close (None: no line differs)."""
    name = " ".join(f.path[:MAX_KEY].split())
    lines = list(difflib.unified_diff(_lines(f.old), _lines(f.new), lineterm="", tofile="b/" + name,
                                      fromfile="/dev/null" if f.old is None else "a/" + name))
    if not lines:
        return None
    block = fenced("\n".join(_visible(line) for line in lines))
    fence, _, rest = block.partition("\n")
    return f"{fence}diff\n{rest}"


def _bounded(entries: list[str], budget: int, most: int = MAX_LISTED) -> list[str]:
    """As many entries as fit in `budget` characters, then how many were left out."""
    kept, used = [], 0
    for i, entry in enumerate(entries):
        if len(kept) >= most or used + len(entry) + 1 > budget:
            return kept + [MORE_ENTRIES.format(count=len(entries) - i)]
        kept.append(entry)
        used += len(entry) + 1
    return kept


def _flag_entries(files: list[_File], flags: list[Flag]) -> list[str]:
    """One entry per flagged line (its reasons together, its text in a code span), in file order."""
    texts = {f.path: dict(f.added) for f in files}
    whys: dict[tuple[str, int], list[str]] = {}
    unread = 0
    for flag in flags:
        if flag.why == UNREAD:
            unread += 1
        elif flag.why != BUILD_TIME:
            whys.setdefault((flag.path, flag.line), []).append(flag.why)
    entries = []
    for (path, number), reasons in whys.items():
        line = texts.get(path, {}).get(number, "") if number else ""
        shown = f": {_span(line[:MAX_LINE], 120)}" if line.strip() else ""
        entries.append(f"- {_span(path)}{f' line {number}' if number else ''}, {', '.join(reasons)}{shown}")
    return ([UNREAD_FILES.format(count=unread)] if unread else []) + entries


def render(base: Mapping[str, str | None], changes: Mapping[str, str | None], *, limit: int = 60_000) -> str:
    """What a maintainer reads before releasing held commits, at most `limit` characters of Markdown safe to
    post: the files that run at CI or build time (first, marked), the lines the scan points at, then a
    collapsed `<details>` block with a unified diff per file in the same order; files whose diff does not fit
    (or that are deleted, binary or too large) are listed with their added and removed lines instead. Text
    from the change appears only inside code spans and fences, so no path or line can mention anyone, start
    a command, close the block or inject HTML."""
    if limit < MIN_LIMIT:
        raise ValueError(f"the held diff needs at least {MIN_LIMIT} characters")
    files = _files(base, changes)
    if not files:
        return NO_CHANGES
    third = limit // 3
    build = [f"- {_label(f)}: {f.build}" for f in files if f.build]
    head = [BUILD_HEADING, *_bounded(build, third // 2)] if build else [NO_BUILD]
    entries = _flag_entries(files, _scan(files))
    head += ["", FLAG_HEADING, *_bounded(entries, third // 2)] if entries else ["", NO_FLAGS]
    header = "\n".join(head)

    room = limit - len(header) - 400  # the summary, the wrapper and "… and N more"
    reserve = min(sum(len(_label(f)) + 40 for f in files), third)  # for the files listed instead of diffed
    shown: list[str] = []
    listed: list[str] = []
    work = MAX_DIFF_LINES
    for f in files:
        if f.counts is None or f.new is None:
            listed.append(f"- {_label(f)}")
            continue
        lines = len(_lines(f.old)) + len(_lines(f.new))
        at_least = sum(len(line) + 2 for _, line in f.added) + f.removed_chars
        if lines > work or at_least > room - reserve:
            listed.append(f"- {_label(f, NO_ROOM)}")
            continue
        work -= lines
        diff = _diff(f)
        if diff is None:  # the lines are the same: an empty new file, or only the newline at the end changed
            listed.append(f"- {_label(f, EMPTY if f.old is None else FINAL_NEWLINE)}")
            continue
        block = f"{_label(f, ': ' + f.build if f.build else '')}\n\n{diff}"
        if len(block) + 2 > room - reserve:
            listed.append(f"- {_label(f, NO_ROOM)}")
            continue
        shown.append(block)
        room -= len(block) + 2
    if listed:
        listed = [LISTED, *_bounded(listed, room, MAX_FILES_LISTED)]
    added = sum(len(f.added) for f in files if f.counts)
    removed = sum(f.removed for f in files if f.counts)
    total = f"{len(files):,} files" if len(files) != 1 else "1 file"
    partly = PARTLY_COUNTED if any(f.counts is None for f in files) else ""
    summary = (SUMMARY.format(files=total, added=added, removed=removed, partly=partly) if not listed else
               SUMMARY_PART.format(shown=len(shown), files=total, added=added, removed=removed, partly=partly))
    body = "\n\n".join(shown + (["\n".join(listed)] if listed else []))
    return f"{header}\n\n<details><summary>{summary}</summary>\n\n{body}\n\n</details>\n"
