"""Every command chantbot understands: its arguments, help line and minimum role; `/help` is generated from it."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from bot import workflow
from bot.assessment import CATEGORIES, PRIORITIES, SEVERITIES
from bot.commands.permissions import describe
from bot.sanitize import code_span


@dataclass(frozen=True)
class CommandSpec:
    """One command: how it is written, what it does, who may run it and what arguments it takes."""

    name: str
    usage: str
    help: str
    min_role: str  # "anyone" | "read" | "triage" | "write" | "maintain" | "admin"
    author_may: bool = False  # the issue's author may run it whatever their role
    arg_kind: str = "none"  # none | category | priority | severity | label | issue | reason | reason-required |
    # version | login (optional: the person who runs it) | switch (optional `on` or `off`)
    stage: str | None = None  # the workflow stage a stage command starts


def _stage(stage: workflow.Stage) -> CommandSpec:
    return CommandSpec(stage.name, f"/{stage.command}", stage.help, stage.role, stage=stage.name)


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("help", "/help", "List these commands and who may run them", "anyone"),
    CommandSpec("status", "/status", "Show the issue's spec chain and where it stands", "anyone"),
    CommandSpec("retriage", "/retriage", "Triage again, e.g. after the issue was edited or questions answered",
                "triage", author_may=True),
    CommandSpec("triage", "/triage", "Triage the issue now", "triage"),
    CommandSpec("kind", "/kind <" + "|".join(CATEGORIES) + ">", "Set the category", "triage",
                arg_kind="category"),
    CommandSpec("priority", "/priority <" + "|".join(PRIORITIES) + ">", "Set the priority", "triage",
                arg_kind="priority"),
    CommandSpec("severity", "/severity <" + "|".join(SEVERITIES) + ">", "Set the severity", "triage",
                arg_kind="severity"),
    CommandSpec("label", "/label <name>", "Add a label of chantbot's vocabulary or `labels.additional` (listed below)",
                "triage", arg_kind="label"),
    CommandSpec("unlabel", "/unlabel <name>", "Remove a label", "triage", arg_kind="label"),
    CommandSpec("duplicate", "/duplicate #N", "Mark as a duplicate of issue #N (it stays open until closed)",
                "triage", arg_kind="issue"),
    CommandSpec("defer", "/defer", "Defer: keep the issue for later, outside the workflow", "triage"),
    CommandSpec("needs-info", "/needs-info", "Mark the issue as waiting for the reporter's answers", "triage"),
    CommandSpec("close", "/close [reason]", "Close the issue, with an optional reason", "triage", author_may=True,
                arg_kind="reason"),
    CommandSpec("reopen", "/reopen", "Reopen the issue", "triage"),
    CommandSpec("assign", "/assign [login]", "Assign someone who can be assigned here (default: you)", "triage",
                arg_kind="login"),
    CommandSpec("unassign", "/unassign [login]", "Remove someone from the assignees (default: you)", "triage",
                arg_kind="login"),
    CommandSpec("security", "/security [off]", "Handle privately as a security report; `off` (maintain): triage it "
                "again as usual", "triage", arg_kind="switch"),
    *(_stage(stage) for stage in workflow.STAGES if stage.agent),
    CommandSpec("ok-to-test", "/ok-to-test", "Push the agent commits held for a maintainer's reading; CI runs them",
                "write"),
    CommandSpec("approve", "/approve", "Approve the change: `chantbot/approval` turns green on the pull request's "
                "head", "maintain"),
    CommandSpec("reject", "/reject <reason>", "Reject the reviewed change and send it back to implementation",
                "maintain", arg_kind="reason-required"),
    CommandSpec("release-notes", "/release-notes <version>", workflow.stage("release-notes").help,
                workflow.stage("release-notes").role, arg_kind="version"),
)

_BY_NAME = {spec.name: spec for spec in COMMANDS}
_ALIASES = {"enhancement": "feature", "docs": "documentation"}
_ISSUE = re.compile(r"#?(\d+)|https?://[^\s/]+/[^\s/]+/[^\s/]+/issues/(\d+)(?:[/?#]\S*)?", re.I)
_VERSION = re.compile(r"v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?")
_LOGIN = re.compile(r"@?([A-Za-z0-9](?:[A-Za-z0-9_-]{0,38}))")
MAX_ARGUMENTS = 50  # words of a command line looked at; reasons and labels are short
MAX_ARGUMENT = 200
_INTRO = ("Write a command at the start of its own line in a comment; several may follow one another. "
          "Commands inside code blocks, quotes and HTML comments are ignored, and editing a comment runs only "
          "the commands the edit added. The stage commands, `/reproduce` to `/document`, start that stage: its "
          "chant spec, and (with a model) an agent whose progress the workflow comment shows; code goes to one "
          "draft pull request that the repository's CI judges and only a person merges.")


def _key(name: str) -> str:
    return name.strip().lstrip("/").lower()


def spec_for(name: str) -> CommandSpec | None:
    """The command called `name` (case-insensitive, with or without the slash), or None."""
    return _BY_NAME.get(_key(name))


def levels(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each command's minimum role, with the repository's overrides applied (unknown names are ignored)."""
    result = {spec.name: spec.min_role for spec in COMMANDS}
    for name, level in (overrides or {}).items():
        if _key(name) in result:
            result[_key(name)] = level
    return result


def author_may(spec: CommandSpec, overrides: Mapping[str, str] | None = None) -> bool:
    """Whether the issue's author may run the command whatever their role: not when the repository sets the
    command's role itself (`commands: {retriage: write}` means people with write access and above)."""
    return spec.author_may and not any(_key(name) == spec.name for name in (overrides or {}))


def _choice(spec: CommandSpec, args: Sequence[str], vocabulary: tuple[str, ...]) -> tuple[list[str], str | None]:
    value = _ALIASES.get(args[0].lower(), args[0].lower()) if len(args) == 1 else None
    if value in vocabulary:
        return [value], None
    return [], f"`/{spec.name}` takes one of {', '.join(vocabulary)}."


def check_args(spec: CommandSpec, args: Sequence[str]) -> tuple[list[str], str | None]:
    """The arguments normalised for the handler, or an error sentence saying what is wrong.

    Choices come back lower-case (`enhancement` → `feature`, `docs` → `documentation`); a label as
    one name (it may contain spaces); an issue reference as its number; a reason as one string (or
    nothing when it is optional and absent); a version as written.
    """
    kind = spec.arg_kind
    args = [arg[:MAX_ARGUMENT] for arg in args[:MAX_ARGUMENTS]]
    if kind == "none":
        return ([], None) if not args else ([], f"`/{spec.name}` takes no arguments.")
    if kind in ("category", "priority", "severity"):
        return _choice(spec, args, {"category": CATEGORIES, "priority": PRIORITIES, "severity": SEVERITIES}[kind])
    text = " ".join(args)
    if kind == "label":
        name = text.strip("\"'`").strip()
        return ([name], None) if name else ([], f"`/{spec.name}` needs a label name.")
    if kind == "issue":
        match = _ISSUE.fullmatch(text)
        number = int(match.group(1) or match.group(2)) if match else 0
        return ([str(number)], None) if number > 0 else ([], f"`/{spec.name}` needs an issue number like #123.")
    if kind in ("reason", "reason-required"):
        if text:
            return [text], None
        return ([], None) if kind == "reason" else ([], f"`/{spec.name}` needs a reason.")
    if kind == "login":
        if not args:
            return [], None
        match = _LOGIN.fullmatch(text)
        return ([match.group(1)], None) if len(args) == 1 and match else \
            ([], f"`/{spec.name}` takes one GitHub login, like `@octocat`, or nothing for yourself.")
    if kind == "switch":
        if len(args) <= 1 and (args[0].lower() if args else "on") in ("on", "off"):
            return [args[0].lower() if args else "on"], None
        return [], f"`/{spec.name}` takes nothing, or `off`."
    if kind == "version":
        if len(args) == 1 and _VERSION.fullmatch(args[0]):
            return [args[0]], None
        return [], f"`/{spec.name}` needs a version like v1.2.3 or 1.2.3."
    raise ValueError(f"unknown argument kind {kind!r} for /{spec.name}")


def suggest(name: str) -> str | None:
    """The command `name` was probably meant to be: a close spelling or an unambiguous prefix, else None."""
    name = _key(name[:40])
    if name in _BY_NAME:
        return name
    starts = [spec.name for spec in COMMANDS if len(name) >= 3 and spec.name.startswith(name)]
    if len(starts) == 1:
        return starts[0]
    close = difflib.get_close_matches(name, list(_BY_NAME), n=1, cutoff=0.6)
    return close[0] if close else None


def help_text(overrides: Mapping[str, str] | None = None, *, labels: Sequence[str] = ()) -> str:
    """Markdown table of every command, what it does and who may run it (with the repository's overrides),
    then the labels `/label` takes in the repository."""
    minimum = levels(overrides)
    rows = ["| command | what it does | who may run it |", "| --- | --- | --- |"]
    for spec in COMMANDS:
        usage = spec.usage.replace("|", "\\|")  # a pipe would split the table cell, even inside a code span
        who = describe(minimum[spec.name], author_may=author_may(spec, overrides))
        rows.append(f"| `{usage}` | {spec.help} | {who} |")
    text = _INTRO + "\n\n" + "\n".join(rows)
    if labels:
        text += "\n\n`/label` takes: " + ", ".join(code_span(name, 50) for name in dict.fromkeys(labels)) + "."
    return text
