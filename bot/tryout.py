"""`python -m bot try PATH`: chantbot on a local clone of a repository and one issue, offline, in the simulator."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, TextIO

from bot import offline, workflow
from bot.runtime import Runtime
from bot.stages.state import Phase
from bot.settings import Settings, SettingsError, from_env
from chantbot_sim.github import GitHubSimulator, app_key_pair

DESCRIPTION = """\
Try chantbot on your own repository before installing it: offline, with no App, webhook or GitHub account.

It loads the git repository at PATH (its default branch: origin's HEAD, else the branch checked out; its
.github/chantbot.yml and .chant/prompts/ are honoured) into chantbot's built-in GitHub simulator, opens
the issue as a person of the role --as names, and shows what chantbot does: it triages the issue (Claude
with ANTHROPIC_API_KEY, else the local triager, which learns from --history), then a maintainer `maint`
comments each command of --stages. Agents' tests run in chantbot's sandbox (CHANTBOT_SANDBOX; `none`: no
sandbox). Nothing of the repository runs while it is read (`git ls-tree`, `git cat-file`).

CI: the simulator plays the repository's CI as GitHub would run it: on each push to a branch but
chant-specs, `python -m pytest` on that commit's files in a temporary folder, with the interpreter chantbot
runs on (only what is installed there) and NOT sandboxed, like your own CI runner. Commits an agent wrote
for an outsider's issue are pushed only after a maintainer's `/ok-to-test`. --no-ci turns it off: pushed
commits then wait for CI, as with a repository that has none.

It prints what the reporter and the maintainers would see on GitHub (comments, labels, the workflow comment,
held diffs, the spec files) and what the model calls cost, and leaves the simulated repository's final
state in --out: a git repository with the branches chantbot made, and the chant-specs branch's .chant/
folder in its work tree, so `chant list` and `chant show ID` work there. Without ANTHROPIC_API_KEY the
stages that need a model say so and write their pending specs, as on GitHub.

--history FILE: closed issues the local triager learns from (and duplicates are found among), one JSON
object a line: {"title": "...", "body": "...", "label": "bug"}; `label` is one of the repository's
category labels (by default bug, enhancement, question, documentation).

--interactive: afterwards, read commands as a named person, one a line, e.g.
  as maint: /implement
  as outsider: /ok-to-test
(maint has maintain access, writer write access, anyone else none; `\\n` in TEXT is a line break) until
`quit` or the end of input."""

OWNER_FALLBACK = "local"
APP_ID = 1
INSTALLATION = 1
SECRET = "try-secret"
MAINTAINER = "maint"
PEOPLE = {MAINTAINER: "maintain", "writer": "write", "outsider": "none"}
REPORTERS = {"outsider": "outsider", "writer": "writer", "maintainer": MAINTAINER}
STAGE_CHOICES = tuple(name for name in workflow.CHAIN if name != "triage")
MAX_FILE = 1024 * 1024  # larger files are left out of the simulated repository, and named
MAX_FILES = 20_000
MAX_TOTAL = 256 * 1024 * 1024
MAX_BODY = 65_536  # GitHub's limit on an issue body
MAX_TITLE = 256
MAX_HISTORY = 10_000  # issues read from --history
MAX_HISTORY_LINE = 100_000
MAX_COMMAND = 65_536
CI_TIMEOUT = 600.0
STAGE_TIMEOUT = 1800.0  # seconds a stage may take here before `try` gives up on it
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")
_AS = re.compile(r"as[ \t]+([A-Za-z0-9-]{1,39})[ \t]*:[ \t]*")


class TryError(Exception):
    """`try` cannot go on; the message is the one line the person sees."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="a local clone of the repository (a git work tree)")
    parser.add_argument("--title", help="the issue's title (required)")
    parser.add_argument("--body-file", metavar="FILE", help="the issue's body (Markdown; required); - reads "
                        "standard input")
    parser.add_argument("--as", dest="role", choices=tuple(REPORTERS), default="outsider",
                        help="who opens the issue: someone without access (default), a writer or a maintainer")
    parser.add_argument("--stages", default="", metavar="STAGE,…",
                        help=f"the stages a maintainer then starts, in order, by command: {', '.join(STAGE_CHOICES)}")
    parser.add_argument("--history", metavar="FILE", help="labelled closed issues as JSON lines "
                        '{"title", "body", "label"}, for the local triager and duplicates')
    parser.add_argument("--out", metavar="DIR", help="where to leave the simulated repository's final state "
                        "(a new or empty folder; default: a new temporary folder, named at the end)")
    parser.add_argument("--interactive", action="store_true", help="then read commands as `as NAME: TEXT` lines "
                        "from standard input, until `quit`")
    parser.add_argument("--no-ci", action="store_true", help="no simulated CI: run nothing of the repository on "
                        "this machine outside the sandbox")
    parser.add_argument("--ci-timeout", type=float, default=CI_TIMEOUT, metavar="SECONDS",
                        help=f"how long the simulated CI's pytest may run (default {CI_TIMEOUT:g})")
    parser.add_argument("--make-example", action="store_true", help="only create PATH: a git repository holding "
                        "the demo's example project (acme/widgets, with a known bug), the bug's report in "
                        "PATH.issue.md and labelled past issues in PATH.history.jsonl, to try chantbot on")


# ---------------------------------------------------------------------------------------------- reading the clone
@dataclass
class Checkout:
    """The default branch of a local clone, as the simulator gets it."""

    full_name: str
    branch: str
    ref: str
    commit: str
    files: dict[str, bytes] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)  # "path (why)"


def _git(path: Path, *args: str, stdin: bytes | None = None, check: bool = True) -> bytes:
    """One git command on the clone. Nothing of the repository runs: no hooks, filters or fsmonitor are involved
    in the plumbing commands used here, and fsmonitor is switched off in case."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
    try:
        done = subprocess.run(["git", "-c", "core.fsmonitor=false", "-C", str(path), *args], input=stdin,
                              capture_output=True, env=env, timeout=300)
    except FileNotFoundError:
        raise TryError("git is not installed (try reads the repository with git)") from None
    except subprocess.TimeoutExpired:
        raise TryError(f"git {args[0]} on {path} took more than 5 minutes") from None
    if check and done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise TryError(f"git {args[0]} failed on {path}: {why[-1][:300] if why else f'exit {done.returncode}'}")
    return done.stdout


def _line(data: bytes) -> str:
    return data.decode("utf-8", "replace").strip()


def default_branch(path: Path) -> tuple[str, str]:
    """(branch name, ref to read): origin's default branch (the local branch of that name when there is one),
    else the branch checked out."""
    remote = _line(_git(path, "symbolic-ref", "-q", "--short", "refs/remotes/origin/HEAD", check=False))
    if remote.startswith("origin/") and len(remote) > len("origin/"):
        name = remote[len("origin/"):]
        local = _git(path, "rev-parse", "-q", "--verify", f"refs/heads/{name}^{{commit}}", check=False)
        return name, f"refs/heads/{name}" if local.strip() else f"refs/remotes/origin/{name}"
    current = _line(_git(path, "symbolic-ref", "-q", "--short", "HEAD", check=False))
    return (current, f"refs/heads/{current}") if current else ("main", "HEAD")


def repository_name(path: Path) -> str:
    """owner/name from origin's URL when it has one, else local/<folder name>."""
    url = _line(_git(path, "config", "--get", "remote.origin.url", check=False))[:500]
    parts = [p for p in re.split(r"[/:]", url.removesuffix("/").removesuffix(".git")) if p]
    if len(parts) >= 2 and _NAME.fullmatch(parts[-2]) and _NAME.fullmatch(parts[-1]):
        return f"{parts[-2]}/{parts[-1]}"
    folder = re.sub(r"[^A-Za-z0-9_.-]", "-", path.resolve().name)[:100].strip(".-") or "repository"
    return f"{OWNER_FALLBACK}/{folder}"


def read_checkout(path: Path) -> Checkout:
    """The default branch's files, read with git plumbing (no work tree, no hooks, nothing run)."""
    if not path.is_dir():
        raise TryError(f"{path} is not a folder")
    if _line(_git(path, "rev-parse", "--is-inside-work-tree", check=False)) != "true" and \
            _line(_git(path, "rev-parse", "--is-bare-repository", check=False)) != "true":
        raise TryError(f"{path} is not a git repository (try reads a local clone)")
    branch, ref = default_branch(path)
    commit = _line(_git(path, "rev-parse", "-q", "--verify", f"{ref}^{{commit}}", check=False))
    if not commit:
        raise TryError(f"{path} has no commit on {branch} yet")
    checkout = Checkout(repository_name(path), branch, ref, commit)
    wanted: list[tuple[str, str]] = []
    total = 0
    for entry in _git(path, "ls-tree", "-r", "-l", "-z", "--full-tree", commit).split(b"\0"):
        if not entry:
            continue
        meta, _, raw_path = entry.partition(b"\t")
        mode, kind, sha, size = meta.decode().split()
        name = raw_path.decode("utf-8", "replace")
        if kind != "blob" or mode == "120000":
            checkout.left_out.append(f"{name} ({'a submodule' if kind == 'commit' else 'a symbolic link'})")
        elif "\n" in name or name.startswith('"'):
            checkout.left_out.append(f"{name!r} (a name chantbot's simulator does not take)")
        elif int(size) > MAX_FILE:
            checkout.left_out.append(f"{name} (over {MAX_FILE // 1024} KiB)")
        elif len(wanted) >= MAX_FILES or total + int(size) > MAX_TOTAL:
            checkout.left_out.append(f"{name} (past {MAX_FILES} files or {MAX_TOTAL // 2**20} MiB)")
        else:
            wanted.append((name, sha))
            total += int(size)
    if wanted:
        checkout.files = dict(zip((name for name, _ in wanted), _blobs(path, [sha for _, sha in wanted])))
    return checkout


def _blobs(path: Path, shas: list[str]) -> list[bytes]:
    """The contents of blobs, in order, from one `git cat-file --batch`."""
    raw = _git(path, "cat-file", "--batch", stdin="".join(f"{sha}\n" for sha in shas).encode())
    out, at = [], 0
    for _ in shas:
        header_end = raw.index(b"\n", at)
        size = int(raw[at:header_end].split()[2])
        out.append(raw[header_end + 1:header_end + 1 + size])
        at = header_end + 1 + size + 1
    return out


def make_example(path: Path) -> list[str]:
    """Create `path` as a git repository of the demo's example project, with its bug's report and a labelled
    history beside it; the lines that say what to run next."""
    from bot import demo

    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise TryError(f"--make-example: {path} must be a new or empty folder")
    if not path.parent.is_dir():
        raise TryError(f"--make-example: the folder {path.parent} does not exist")
    for name, text in {**demo.FILES, ".github/chantbot.yml": demo.CONFIG}.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text, encoding="utf-8")
    who = ("-c", "user.name=chantbot", "-c", "user.email=chantbot@localhost")
    _git(path, "init", "-q")
    _git(path, "symbolic-ref", "HEAD", "refs/heads/main")
    _git(path, "add", "-A")
    _git(path, *who, "commit", "-q", "-m", "widgets: the demo's example project")
    issue, history = Path(f"{path}.issue.md"), Path(f"{path}.history.jsonl")
    issue.write_text(demo.BUG[1] + "\n", encoding="utf-8")
    history.write_text("".join(json.dumps({"title": t, "body": b, "label": label}) + "\n"
                               for t, b, label in demo.HISTORY), encoding="utf-8")
    return [f"made {path} (a git repository: the demo's widgets project, whose columns() has a bug),",
            f"{issue} (the bug's report) and {history} ({len(demo.HISTORY)} labelled past issues). Next:",
            f"  python -m bot try {path} --title {shlex.quote(demo.BUG[0])} --body-file {issue} "
            f"--history {history} --stages reproduce"]


# ---------------------------------------------------------------------------------------------- reading the inputs
def read_body(name: str, stdin: TextIO) -> str:
    if name == "-":
        return stdin.read(MAX_BODY)
    try:
        with open(name, encoding="utf-8", errors="replace") as fh:
            return fh.read(MAX_BODY)
    except OSError as exc:
        raise TryError(f"cannot read --body-file {name}: {exc.strerror or exc}") from None


def read_history(name: str) -> list[tuple[str, str, str]]:
    """(title, body, label) of each line of a JSON-lines file; a line that is not such an object is an error."""
    out = []
    try:
        with open(name, encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                line = line[:MAX_HISTORY_LINE].strip()
                if not line:
                    continue
                if len(out) >= MAX_HISTORY:
                    break
                try:
                    item = json.loads(line)
                except ValueError:
                    raise TryError(f"--history {name}, line {number}: not JSON") from None
                if not (isinstance(item, dict) and isinstance(item.get("title"), str) and item["title"].strip()
                        and isinstance(item.get("label"), str) and item["label"].strip()
                        and isinstance(item.get("body", ""), (str, type(None)))):
                    raise TryError(f'--history {name}, line {number}: want {{"title": "…", "body": "…", '
                                   f'"label": "…"}} (title and label non-empty text)')
                out.append((item["title"][:MAX_TITLE], (item.get("body") or "")[:MAX_BODY], item["label"][:50]))
    except OSError as exc:
        raise TryError(f"cannot read --history {name}: {exc.strerror or exc}") from None
    return out


def parse_stages(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in STAGE_CHOICES]
    if unknown:
        raise TryError(f"--stages: no stage {unknown[0][:40]!r}; the stages are {', '.join(STAGE_CHOICES)}")
    return list(dict.fromkeys(names))


def out_folder(name: str | None) -> Path:
    if name is None:
        return Path(tempfile.mkdtemp(prefix="chantbot-try-"))
    target = Path(name)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise TryError(f"--out {name} must be a new or empty folder")
    if not target.parent.is_dir():
        raise TryError(f"--out {name}: the folder {target.parent} does not exist")
    target.mkdir(exist_ok=True)
    return target


def settings_for(env: Mapping[str, str], sim_url: str, private_key: str, database: Path) -> Settings:
    """The person's own settings (model, key, sandbox, budget), with the App, webhook and database of this run."""
    own = {name: value for name, value in env.items()
           if name in ("ANTHROPIC_API_KEY", "BOT_MODEL", "CHANTBOT_DAILY_USD", "CHANTBOT_SANDBOX",
                       "CHANTBOT_SANDBOX_PYTHON")}
    try:
        return from_env({**own, "GITHUB_APP_ID": str(APP_ID), "GITHUB_PRIVATE_KEY": private_key,
                         "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_API_URL": sim_url,
                         "DATABASE_URL": f"sqlite:///{database}", "BOT_CONCURRENCY": "4",
                         "GITHUB_WRITE_LIMITS": "1000/min"})
    except SettingsError as exc:
        raise TryError(str(exc)) from None


# ---------------------------------------------------------------------------------------------- the run
class Session:
    """One issue in the simulator, driven by people's comments, printing what changes on GitHub."""

    def __init__(self, sim: GitHubSimulator, runtime: Runtime, url: str, repo: str, out: TextIO) -> None:
        self.sim, self.runtime, self.url, self.repo, self.out = sim, runtime, url, repo, out
        self.number = 0
        self.seen: dict[int, str] = {}  # comment id -> body last shown
        self.labels: list[str] = []

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    async def settle(self) -> None:
        await offline.quiet(self.sim, self.runtime, self.repo, self.number, STAGE_TIMEOUT)

    async def open_issue(self, title: str, body: str, user: str) -> None:
        issue = self.sim.add_issue(self.repo, title=title, body=body, user=user)
        self.number = int(issue["number"])
        self.say(offline.rule(f"#{self.number} {title!r}, opened by {user} ({_access(user)})"))
        await self.sim.deliver(self.url, SECRET, "issues", self.sim.issue_payload("opened", self.repo, self.number))
        await self.settle()
        self.show_changes()

    async def comment(self, user: str, text: str) -> None:
        self.say(offline.rule(f"#{self.number}: {user} ({_access(user)}) comments {text!r}"))
        made = self.sim.add_comment(self.repo, self.number, body=text, user=user)
        self.seen[int(made["id"])] = text
        await self.sim.deliver(self.url, SECRET, "issue_comment",
                               self.sim.comment_payload("created", self.repo, self.number, made["id"]))
        await self.settle()
        if reactions := self.sim.reactions(int(made["id"])):
            self.say(f"reactions to it: {', '.join(reactions)}")
        self.show_changes()

    def show_changes(self) -> None:
        """The labels when they changed, and each comment that is new or edited since last shown."""
        labels = sorted(self.sim.labels_on(self.repo, self.number))
        if labels != self.labels:
            self.say(f"labels: {', '.join(labels) or '(none)'}")
            self.labels = labels
        for found in self.sim.comments(self.repo, self.number):
            if self.seen.get(int(found["id"])) == found["body"]:
                continue
            what = "new" if int(found["id"]) not in self.seen else "edited"
            self.seen[int(found["id"])] = found["body"]
            self.say(f"\n{found['user']['login']}'s comment ({what}):\n")
            held = offline.MARKER_OPEN + "workflow" in found["body"]  # its collapsed sections are held diffs
            text = offline.unfolded(found["body"]) if held else offline.collapsed(offline.unmarked(found["body"]))
            self.say(offline.framed(text))

    async def started(self, stage: str) -> bool:
        return any(run.stage == stage for run in await self.runtime.store.runs_for_issue(self.repo, self.number))

    async def waiting(self) -> list[str]:
        """What the issue's unfinished runs wait for, e.g. "reproduce: held for a maintainer's `/ok-to-test`"."""
        return [f"{run.stage}: " + ("held for a maintainer's `/ok-to-test`" if run.data.get("phase") == Phase.HELD
                                    else "waiting for CI")
                for run in await self.runtime.store.runs_for_issue(self.repo, self.number)
                if run.status == "waiting_ci"]

    async def start_stages(self, stages: list[str]) -> None:
        """The maintainer's command for each stage, in order: skipped when the stage already started on its own,
        and stopped while a run waits for a person or for CI (a later stage would be refused meanwhile)."""
        for at, stage in enumerate(stages):
            if waits := await self.waiting():
                self.say(offline.rule(f"{'; '.join(waits)}: {MAINTAINER} does not start {', '.join(stages[at:])} "
                                      f"meanwhile (--interactive lets you comment as anyone)"))
                return
            if await self.started(stage):
                self.say(offline.rule(f"{stage}: already started on its own; {MAINTAINER} need not ask for it"))
                continue
            await self.comment(MAINTAINER, f"/{workflow.stage(stage).command}")


async def run(args: argparse.Namespace, *, env: Mapping[str, str] | None = None, out: TextIO | None = None,
              stdin: TextIO | None = None) -> int:
    """The command; returns the exit status. Raises TryError for a mistake in its arguments or input."""
    env = os.environ if env is None else env
    out, stdin = out or sys.stdout, stdin or sys.stdin
    if args.make_example:
        for line in await asyncio.to_thread(make_example, Path(args.path)):
            print(line, file=out)
        return 0
    if not args.title or not args.body_file:
        raise TryError("try needs the issue: --title TITLE --body-file FILE")
    if args.body_file == "-" and args.interactive:
        raise TryError("--interactive reads commands from standard input, so --body-file cannot be - there")
    if not args.ci_timeout > 0:
        raise TryError("--ci-timeout must be a positive number of seconds")
    stages = parse_stages(args.stages)
    body = read_body(args.body_file, stdin)
    history = read_history(args.history) if args.history else []
    title = " ".join(args.title.split())[:MAX_TITLE]
    if not title:
        raise TryError("--title must not be empty")
    checkout = await asyncio.to_thread(read_checkout, Path(args.path))
    target = out_folder(args.out)
    reporter = REPORTERS[args.role]
    started = time.monotonic()

    private, public = app_key_pair()
    sim = simulator(checkout, history, public)
    repo = checkout.full_name
    await sim.start()
    with tempfile.TemporaryDirectory(prefix="chantbot-try-db-") as scratch:
        try:
            settings = settings_for(env, sim.base_url, private, Path(scratch) / "chantbot.db")
            runtime = Runtime(settings, spec_commit_delay=0.2)
            from bot.sandbox import SandboxUnavailable

            try:
                sandbox_line = runtime.open_sandbox()
            except SandboxUnavailable as exc:
                raise TryError(str(exc)) from None
            async with offline.running(sim, runtime, SECRET,
                                       ci_timeout=None if args.no_ci else args.ci_timeout) as url:
                session = Session(sim, runtime, url, repo, out)
                _introduce(session, checkout, settings, sandbox_line, len(history), Path(args.path),
                           None if args.no_ci else args.ci_timeout)
                await sim.deliver(url, SECRET, "installation_repositories", {
                    "action": "added", "installation": {"id": INSTALLATION},
                    "repositories_added": [{"full_name": repo}], "sender": {"login": MAINTAINER, "type": "User"}})
                await offline.idle(runtime, STAGE_TIMEOUT)
                await session.open_issue(title, body, reporter)
                await session.start_stages(stages)
                if args.interactive:
                    await _interact(session, stdin)
                await _report(session, checkout, settings)
                written = await asyncio.to_thread(write_state, sim, repo, checkout.branch, target)
        finally:
            await sim.stop()
    session.say(offline.rule(f"the simulated repository's final state: {target}"))
    session.say(f"  branches: {', '.join(written)} (git -C {target} log --all; the work tree is {checkout.branch})")
    session.say(f"  specs: {target / '.chant'} (cd {target} && chant list)")
    session.say(f"  wall time {time.monotonic() - started:.1f} s")
    return 0


def simulator(checkout: Checkout, history: list[tuple[str, str, str]], public_key: str) -> GitHubSimulator:
    """A simulator holding the clone's default branch, its people and its closed, labelled past issues."""
    sim = GitHubSimulator(app_id=APP_ID, public_key_pem=public_key, app_slug="chantbot")
    sim.write_limits = [(1000, 60.0)]  # chantbot paces its own writes; this GitHub lets a run go at its pace
    repo, owner = checkout.full_name, checkout.full_name.split("/")[0]
    texts = {path: data.decode("utf-8") for path, data in checkout.files.items() if _is_text(data)}
    sim.add_repo(repo, default_branch=checkout.branch, files=texts, collaborators=dict(PEOPLE))
    if binaries := {path: data for path, data in checkout.files.items() if path not in texts}:
        sim.push(repo, checkout.branch, dict(binaries), user=owner, message="Binary files")
    sim.add_installation(INSTALLATION, owner, [repo])
    for title, body, label in history:
        sim.add_issue(repo, title=title, body=body, user="someone", labels=[label], state="closed")
    return sim


def _access(user: str) -> str:
    role = PEOPLE.get(user, "none")
    return "no access" if role == "none" else f"{role} access"


def _is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\0" not in data


def _introduce(session: Session, checkout: Checkout, settings: Settings, sandbox_line: str, history: int,
               path: Path, ci_timeout: float | None) -> None:
    say = session.say
    say(offline.rule(f"chantbot try: {path} as {checkout.full_name} in the built-in GitHub simulator"))
    say(f"repository: {len(checkout.files)} files of {checkout.branch} at {checkout.commit[:12]} ({checkout.ref})")
    for item in checkout.left_out[:20]:
        say(f"  left out: {item}")
    if len(checkout.left_out) > 20:
        say(f"  left out: {len(checkout.left_out) - 20} more")
    config = ".github/chantbot.yml" in checkout.files
    prompts = sorted(p for p in checkout.files if p.startswith(".chant/prompts/") and p.endswith(".md"))
    say(f"configuration: {'.github/chantbot.yml' if config else 'none (the defaults)'}; prompt overrides: "
        f"{', '.join(prompts) or 'none'}")
    model = settings.anthropic_api_key is not None
    say(f"triager: {f'Claude ({settings.model})' if model else 'local (no ANTHROPIC_API_KEY set)'}"
        f"{f'; it is given {history} labelled past issues from --history to learn from' if history and not model else ''}")
    say(f"stage agents: {f'Claude ({settings.model})' if model else 'none (no ANTHROPIC_API_KEY set): stages write their pending specs'}")
    say(sandbox_line)
    say("CI: off (--no-ci): pushed commits wait for CI" if ci_timeout is None else
        f"CI: the simulator runs `python -m pytest` on each push to a branch but chant-specs, on this machine and "
        f"not sandboxed, with chantbot's interpreter (at most {ci_timeout:g} s)")
    say(f"people: {', '.join(f'{who} ({_access(who)})' for who in PEOPLE)}")


async def _interact(session: Session, stdin: TextIO) -> None:
    session.say(offline.rule("interactive: `as NAME: TEXT` comments TEXT as NAME (maint, writer, outsider or "
                             "anyone); `quit` ends"))
    lines = _reading(stdin)
    while True:
        line = await lines.get()
        if not line or line.strip() in ("quit", "exit"):
            return
        text = line.strip()
        if not text:
            continue
        found = _AS.match(text)
        if found is None or not _LOGIN.fullmatch(found[1]) or not text[found.end():].strip():
            session.say(f"not understood: {text[:80]!r}; write `as NAME: TEXT`, e.g. `as maint: /implement`, "
                        f"or `quit`")
            continue
        await session.comment(found[1], text[found.end():].strip().replace("\\n", "\n"))


def _reading(stdin: TextIO) -> "asyncio.Queue[str]":
    """The lines of `stdin` as a thread reads them ("" at the end). The thread is a daemon, so a person's Ctrl-C
    ends `try` even while it waits for their next line."""
    loop, lines = asyncio.get_running_loop(), asyncio.Queue()  # type: ignore[var-annotated]

    def read() -> None:
        while True:
            line = stdin.readline(MAX_COMMAND)
            try:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            except RuntimeError:  # the loop has closed: try has ended
                return
            if not line:
                return

    threading.Thread(target=read, name="try-stdin", daemon=True).start()
    return lines


async def _report(session: Session, checkout: Checkout, settings: Settings) -> None:
    """The issue's end state: labels, branch, pull request, CI, approval, the spec files, and the cost."""
    sim, repo, number, say = session.sim, session.repo, session.number, session.say
    say(offline.rule(f"#{number} at the end"))
    say(f"labels: {', '.join(sorted(sim.labels_on(repo, number))) or '(none)'}")
    branch = f"chant/issue-{number}"
    if branch in sim.branches(repo):
        base, head = sim.files(repo, branch=checkout.branch), sim.files(repo, branch=branch)
        changed = sorted(p for p in set(base) | set(head) if base.get(p) != head.get(p))
        say(f"branch {branch}: changes {', '.join(changed) or 'nothing'}")
        for suite in (s for s in sim.check_suites(repo) if s["head_branch"] == branch):
            message = suite["head_commit"]["message"].splitlines()[0][:100] if suite["head_commit"]["message"] else ""
            say(f"  CI on {suite['head_sha'][:12]} {message!r}: {suite['conclusion'] or suite['status']}")
        for pull in (p for p in sim.pulls(repo) if p["head"]["ref"] == branch):
            say(f"draft pull request #{pull['number']}: {pull['title']!r}")
            for review in sim.reviews(repo, pull["number"]):
                say(f"  review ({review['state']}):")
                say(offline.framed(offline.unfolded(review["body"] or "")))
            for note in sim.review_comments(repo, pull["number"]):
                say(f"  on {note['path']} line {note['line']}: {note['body']}")
        for status in sim.statuses(repo, branch):
            say(f"commit status {status['context']}: {status['state']}")
    else:
        say(f"branch {branch}: none (nothing pushed)")
    files = sim.files(repo, branch="chant-specs")
    written = sorted(p for p in files if p.startswith(".chant/") and p != ".chant/config.md"
                     and not p.startswith(".chant/prompts/"))
    say(offline.rule(f"spec files on chant-specs ({len(written)})"))
    for path in written:
        say(f"\n--- {path}\n")
        say(offline.framed(files[path].rstrip("\n")))
    say(offline.rule("what it cost"))
    for line in await cost_lines(session.runtime, repo, number, settings):
        say(line)


async def cost_lines(runtime: Runtime, repo: str, number: int, settings: Settings) -> list[str]:
    """Each stage run's model calls, tokens and cost, and triage's (what is left of the process's tokens)."""
    from bot.modelcalls import Usage, price

    kinds = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    total = {kind: int(runtime.metrics.registry.get_sample_value("chantbot_llm_tokens_total", {"kind": kind}) or 0)
             for kind in kinds}
    lines, spent = [], 0.0
    for run in await runtime.store.runs_for_issue(repo, number):
        usage = run.data.get("usage") or {}
        for kind in kinds:
            total[kind] -= int(usage.get(kind, 0))
        usd = float(run.data.get("usd", 0.0))
        spent += usd
        prompt = sum(int(usage.get(k, 0)) for k in kinds if k != "output_tokens")
        lines.append(f"  {run.stage:<10} {run.status:<10} {run.data.get('turns', 0):>2} model calls, {prompt:>7} "
                     f"input tokens ({usage.get('cache_read_input_tokens', 0)} from the cache), "
                     f"{usage.get('output_tokens', 0):>6} output, ${usd:.4f}")
    if runtime.llm is not None:
        usd = price(settings.model).cost(Usage(**{kind: max(0, total[kind]) for kind in kinds}))
        spent += usd
        lines.insert(0, f"  {'triage':<10} {'':<10}  {total['input_tokens'] + total['cache_read_input_tokens']:>7} "
                        f"input tokens, {total['output_tokens']} output, ${usd:.4f} at {settings.model}'s list price")
    else:
        lines.insert(0, f"  {'triage':<10} the local triager: no model calls, $0")
    lines.append(f"  total ${spent:.4f}")
    return lines


# ---------------------------------------------------------------------------------------------- the final state
def write_state(sim: GitHubSimulator, repo: str, default: str, target: Path) -> list[str]:
    """Every branch of the simulated repository as a commit of a new git repository at `target` (one commit each:
    its tree as chantbot left it), the default branch checked out, and the chant-specs branch's .chant/ files
    written into the work tree; returns the branch names."""
    found = sim.find_repo(repo)
    branches = sim.branches(repo)
    stream = bytearray()
    when = int(time.time())
    for branch in branches:
        head = found.git.refs[f"heads/{branch}"]
        message = f"{branch} as chantbot left it in the simulator ({repo})\n".encode()
        stream += (f"commit refs/heads/{branch}\ncommitter chantbot <chantbot@localhost> {when} +0000\n"
                   f"data {len(message)}\n").encode() + message + b"deleteall\n"
        for path, blob in sorted(found.git.files_at(head).items()):
            if "\n" in path or path.startswith('"'):
                continue
            data = found.git.blobs[blob]
            stream += f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n"
    _git(target, "init", "-q")
    _git(target, "fast-import", "--quiet", stdin=bytes(stream))
    _git(target, "symbolic-ref", "HEAD", f"refs/heads/{default}")
    _git(target, "reset", "-q", "--hard")
    specs = sim.find_repo(repo).git.refs.get("heads/chant-specs")
    if specs is not None:
        for path, blob in found.git.files_at(specs).items():
            if path.startswith(".chant/") and ".." not in path.split("/"):
                destination = target / path
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(found.git.blobs[blob])
    return branches
