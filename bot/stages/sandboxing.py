"""A run's use of the sandbox: the agent's `run_tests` tool, and the verdict that judges what a run wrote before
anything of it leaves chantbot's machine. The repository's code runs nowhere else."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from gidgethub.abc import GitHubAPI

from bot import sandbox as sandboxes
from bot.context import Context
from bot.repoconfig import RepoConfig
from bot.sandbox import Limits, Setup, TestRun
from bot.specbranch import head_of
from bot.stages import verdicts
from bot.stages.state import RunState
from bot.stages.tools import Result, Workspace, check_path

log = logging.getLogger(__name__)

MAX_PATHS = 20
MAX_SELECT = 200
_SELECT = re.compile(r"[\w .:\[\]()=-]{1,200}")  # pytest -k expressions: names, and/or/not, parentheses


@dataclass(frozen=True)
class Judgement:
    """The sandbox's verdict on a run's writes, and the report the agent gets back when it does not hold up."""

    kind: str  # reproduced | not reproduced | broken | green | red
    test: str = ""
    line: str = ""
    report: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "test": self.test, "line": self.line}


def _limits(config: RepoConfig) -> Limits:
    return Limits(timeout=float(getattr(config, "sandbox_timeout", 300.0)))


def _test_command(config: RepoConfig) -> str:
    return getattr(config, "sandbox_test", None) or sandboxes.DEFAULT_TEST


async def _setup(ctx: Context, gh: GitHubAPI, repo: str, state: RunState,
                 config: RepoConfig) -> tuple[Setup | None, str]:
    """The repository's cached environment, made from its default branch's files once per dependency hash.
    (None, why) when its setup failed: tests then run with chantbot's interpreter, and the answer says so.
    The default branch's head is read once per run (`state.setup_commit`), not once per test run."""
    if not state.setup_commit:
        default = str((await ctx.repos.repository(gh, repo)).get("default_branch") or "main")
        state.setup_commit = await head_of(gh, repo, default) or ""
        if not state.setup_commit:
            return None, f"{repo} has no {default} branch"
    snapshot = await ctx.snapshots.get(gh, repo, state.setup_commit)
    command = getattr(config, "sandbox_setup", None)
    if command is None:
        command = sandboxes.default_setup(snapshot.files)
    if not command:
        return None, ""
    made = await ctx.sandbox.setup(snapshot.archive, command, timeout=_limits(config).timeout)
    if made.status != 0:  # it failed, or was killed (no status)
        return None, f"the sandbox's setup (`sandbox.setup`) failed with status {made.status}: {made.output[-800:]}"
    return made, ""


async def _run(ctx: Context, config: RepoConfig, workspace: Workspace, setup: Setup | None, *,
               paths: list[str], select: str | None = None, overlay: bool = True) -> TestRun:
    return await ctx.sandbox.run_tests(workspace.snapshot.archive, workspace.overlay if overlay else {},
                                       _test_command(config), paths=paths, select=select, setup=setup,
                                       limits=_limits(config))


async def run_tests_tool(ctx: Context, gh: GitHubAPI, repo: str, state: RunState, config: RepoConfig,
                         workspace: Workspace, args: Any) -> Result:
    """The agent's `run_tests`: the repository's test command on the run's work tree, in the sandbox."""
    if not isinstance(args, dict) or set(args) - {"paths", "select"}:
        return Result('run_tests takes {"paths"?: [test files or folders], "select"?: a name filter}', True)
    paths = args.get("paths") or []
    if not isinstance(paths, list) or len(paths) > MAX_PATHS:
        return Result(f"paths must be a list of at most {MAX_PATHS} test files or folders", True)
    for path in paths:
        problem = check_path(path, folder=True)
        if problem:
            return Result(f"{str(path)[:100]!r}: {problem}", True)
    select = args.get("select")
    if select is not None and (not isinstance(select, str) or not _SELECT.fullmatch(select)):
        return Result(f"select must be a pytest -k expression of at most {MAX_SELECT} characters (names, and, "
                      "or, not, parentheses)", True)
    most = int(getattr(config, "sandbox_runs", 20))
    if state.test_runs >= most:
        return Result(f"this run has used its {most} run_tests calls (sandbox.runs); submit your result", True)
    state.test_runs += 1
    setup, problem = await _setup(ctx, gh, repo, state, config)
    run = await _run(ctx, config, workspace, setup, paths=[p.rstrip("/") for p in paths], select=select)
    log.info("run_tests: %s#%d (%d of %d): exit %s, %d tests", repo, state.number, state.test_runs, most, run.status,
             len(run.outcomes))
    text = run.render()
    return Result((f"Note: {problem}\n\n" if problem else "") + text)


async def judge(ctx: Context, gh: GitHubAPI, repo: str, state: RunState, config: RepoConfig, kind: str,
                workspace: Workspace) -> Judgement:
    """The sandbox's verdict on the run's writes: for a reproduction, the tests it added or changed; for a fix,
    the reproduction's tests and the whole suite against the suite on the base commit."""
    changed = sorted(workspace.changes())
    setup, problem = await _setup(ctx, gh, repo, state, config)
    if kind == "reproduction":
        run = await _run(ctx, config, workspace, setup, paths=changed)
        found = verdicts.reproduce(run, changed)
        return Judgement(found.kind, found.test, _line(found.line, problem), run.render())
    reproduction = [p for p in state.reproduction if workspace.text(p) is not None]
    repro_run = None
    if reproduction:
        repro_run = await _run(ctx, config, workspace, setup, paths=reproduction)
    suite = await _run(ctx, config, workspace, setup, paths=[])
    base = await _run(ctx, config, workspace, setup, paths=[], overlay=False)
    found = verdicts.implement(repro_run if repro_run is not None else suite, suite, base)
    report = "\n\n".join(r.render(8000) for r in (repro_run, suite) if r is not None)
    return Judgement(found.kind, found.test, _line(found.line, problem), report)


def _line(line: str, problem: str) -> str:
    return f"{line} ({problem[:200]})" if problem else line
