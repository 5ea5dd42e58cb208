"""The bubblewrap sandbox: a repository's commands in a throwaway copy, as an unprivileged user, without network."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import hashlib
import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import weakref
from dataclasses import dataclass
from typing import Mapping, Sequence

from bot.sandbox import junit
from bot.sandbox.results import Limits, Setup, TestRun
from bot.sandbox.tree import Tree, dependency_hashes, hand_over, lay_out, read_regular

SANDBOX_UID = 65534  # "nobody": the sandbox's user when chantbot runs as root
REPO = "/chant/repo"
OUT = "/chant/out"
ENV = "/chant/env"
PYTHON = "/chant/python"
JUNIT = OUT + "/junit.xml"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
TMP_SIZE = 512 * 1024**2
TMP = "/var/tmp"  # the sandbox's writable temporary folder (and HOME)
CACHE_FORMAT = "chantbot-sandbox-setup-1"
CHANGED_DEPENDENCY = "a dependency file changed ({paths}): the cached environment was used"
SELECT_IGNORED = "select was not applied: the test command has neither {select} nor {paths}"

_INTERPRETER_PROBE = (
    "import json, sys, sysconfig; print(json.dumps({'executable': sys.executable, 'prefix': sys.prefix, "
    "'base_prefix': sys.base_prefix, 'version': sys.version.split()[0]}))"
)


class SandboxError(Exception):
    """bubblewrap could not start a sandbox here (the reason is bwrap's own)."""


def _system(path: str) -> bool:
    return any(path == root or path.startswith(root + "/") for root in SYSTEM)


@dataclass(frozen=True)
class Interpreter:
    """How `python3` is laid into the sandbox: a folder at /chant/python, plus read-only binds."""

    skeleton: str  # host folder mounted read-only at /chant/python
    binds: tuple[tuple[str, str], ...]  # (host path, path inside) mounted read-only
    identity: str  # what the setup cache key knows of it
    description: str


def _pytest_closure() -> list[str]:
    """Host paths of the top-level entries (packages, modules, dist-info) of pytest and what it requires."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: dict[str, metadata.Distribution] = {}
    todo = ["pytest"]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[name] = dist
        for line in dist.requires or ():
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    entries: set[str] = set()
    for dist in seen.values():
        for file in dist.files or ():
            first = file.parts[0]
            if first in ("..", "__pycache__") or first.endswith(".pth"):
                continue
            entries.add(os.path.realpath(str(dist.locate_file(first))))
    return sorted(entries)


def own_interpreter(workdir: str) -> Interpreter:
    """chantbot's own interpreter as a small virtual environment holding only pytest and its requirements
    (chantbot's checkout and its other packages stay out of sight)."""
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    version = ".".join(map(str, sys.version_info[:3]))
    skeleton = os.path.join(workdir, "python")
    site = f"lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"
    os.makedirs(os.path.join(skeleton, "bin"), exist_ok=True)
    os.makedirs(os.path.join(skeleton, site), exist_ok=True)
    with open(os.path.join(skeleton, "pyvenv.cfg"), "w") as handle:
        handle.write(f"home = {os.path.dirname(base)}\ninclude-system-site-packages = false\nversion = {version}\n")
    for name in ("python3", "python"):
        link = os.path.join(skeleton, "bin", name)
        if not os.path.lexists(link):
            os.symlink(base, link)
    binds: list[tuple[str, str]] = []
    prefix = os.path.realpath(sys.base_prefix)
    if not _system(prefix):
        binds.append((prefix, prefix))
    for entry in _pytest_closure():
        inside = os.path.join(PYTHON, site, os.path.basename(entry))
        placeholder = os.path.join(skeleton, site, os.path.basename(entry))
        if os.path.isdir(entry):
            os.makedirs(placeholder, exist_ok=True)
        elif not os.path.exists(placeholder):
            open(placeholder, "w").close()
        binds.append((entry, inside))
    return Interpreter(skeleton, tuple(binds), f"{base} {version}", f"python {version} with pytest")


def named_interpreter(path: str, workdir: str) -> Interpreter:
    """An interpreter the operator named (CHANTBOT_SANDBOX_PYTHON), visible read-only with its own packages."""
    try:
        found = subprocess.run([path, "-c", _INTERPRETER_PROBE], capture_output=True, text=True, timeout=30)
        facts = json.loads(found.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as error:
        raise SandboxError(f"CHANTBOT_SANDBOX_PYTHON={path} does not run as a Python interpreter ({error})") from error
    skeleton = os.path.join(workdir, "python")
    os.makedirs(os.path.join(skeleton, "bin"), exist_ok=True)
    for name in ("python3", "python"):
        with open(os.path.join(skeleton, "bin", name), "w") as handle:
            handle.write(f"#!/bin/sh\nexec {shlex.quote(facts['executable'])} \"$@\"\n")
        os.chmod(os.path.join(skeleton, "bin", name), 0o755)
    binds = []
    for prefix in {os.path.realpath(facts["prefix"]), os.path.realpath(facts["base_prefix"])}:
        if not _system(prefix):
            binds.append((prefix, prefix))
    return Interpreter(skeleton, tuple(sorted(binds)), f"{facts['executable']} {facts['version']}",
                       f"python {facts['version']} at {path}")


def _folders(destinations: Sequence[str]) -> list[str]:
    """The folders above the mount points that the sandbox's empty root lacks, parents first."""
    folders: set[str] = set()
    for destination in destinations:
        parent = os.path.dirname(destination)
        while parent not in ("/", "") and not _system(parent):
            if not any(parent == d or parent.startswith(d + "/") for d in destinations):
                folders.add(parent)
            parent = os.path.dirname(parent)
    return sorted(folders, key=lambda f: (f.count("/"), f))


def _limit(limits: Limits):  # type: ignore[no-untyped-def]
    """The child's resource limits, set after fork and before bwrap starts (inherited by everything inside)."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory, limits.memory))
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size, limits.file_size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


@dataclass(frozen=True)
class Finished:
    """How one sandboxed command ended."""

    status: int | None
    killed: str | None
    output: str


class BwrapSandbox:
    """Runs setup and test commands under bubblewrap."""

    kind = "bwrap"

    def __init__(self, bwrap: str, version: str, interpreter: Interpreter, cache: str, workdir: str) -> None:
        self.bwrap = bwrap
        self.version = version
        self.interpreter = interpreter
        self.cache = cache
        self.workdir = workdir
        root = os.geteuid() == 0
        self.uid = SANDBOX_UID if root else os.geteuid()
        self.gid = SANDBOX_UID if root else os.getegid()
        self.switch_user = root
        self.setpriv = shutil.which("setpriv") or "setpriv"  # util-linux: drops root inside the sandbox
        weakref.finalize(self, shutil.rmtree, workdir, True)  # the interpreter's folder and any copy left

    def describe(self) -> str:
        return f"bwrap {self.version} ({self.bwrap}; uid {self.uid}; {self.interpreter.description})"

    # -- the command line ---------------------------------------------------------------------------

    def _argv(self, command: str, binds: Sequence[tuple[int, str, bool]], env: Mapping[str, str], *,
              network: bool) -> list[str]:
        argv = [self.bwrap]
        if self.switch_user:
            # bwrap runs as root here (it mounts what chantbot opened) without a user namespace, keeping only the
            # capabilities setpriv needs to become the unprivileged sandbox user before the command starts: a
            # user namespace would map the sandbox user to root outside, owner of the host's files.
            argv += ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try", "--cap-drop", "ALL"]
            argv += [part for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP") for part in ("--cap-add", cap)]
            if not network:
                argv.append("--unshare-net")
        else:
            argv += ["--unshare-all", "--unshare-user", "--disable-userns"] + (["--share-net"] if network else [])
        argv += ["--die-with-parent", "--new-session", "--hostname", "sandbox"]
        for path in SYSTEM:
            if os.path.islink(path):
                argv += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                argv += ["--ro-bind", path, path]
        # The writable temporary folder is a fresh /var/tmp (where Python's tempfile and pytest's tmp_path land
        # when /tmp is not writable); /tmp is empty and read-only, so a write to a fixed /tmp path, where a
        # host's files would be, fails instead of seeming to succeed.
        argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(TMP_SIZE), "--tmpfs", TMP,
                 "--tmpfs", "/tmp", "--remount-ro", "/tmp"]
        for folder in _folders([inside for _, inside, _ in binds]):  # bwrap would make them root's, mode 0700
            argv += ["--perms", "0755", "--dir", folder]
        for fd, inside, writable in binds:
            argv += ["--bind-fd" if writable else "--ro-bind-fd", str(fd), inside]
        argv += ["--chdir", REPO, "--clearenv"]
        for name, value in env.items():
            argv += ["--setenv", name, value]
        argv.append("--")
        if self.switch_user:
            argv += [self.setpriv, f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--inh-caps=-all",
                     "--bounding-set=-all", "--no-new-privs", "--"]
        return argv + ["/bin/sh", "-c", command]

    def _prepare(self, command: str, mounts: Sequence[tuple[str, str, bool]], env: Mapping[str, str], *,
                 network: bool) -> tuple[list[str], list[int]]:
        """bwrap's command line and the descriptors of what it mounts (opened here, so that what is mounted is
        the folder chantbot made, whatever its path names by the time bwrap starts)."""
        fds: list[int] = []
        binds = []
        try:
            for host, inside, writable in (
                [(self.interpreter.skeleton, PYTHON, False)]
                + [(h, i, False) for h, i in self.interpreter.binds]
                + list(mounts)
            ):
                fd = os.open(host, os.O_PATH | os.O_CLOEXEC)
                fds.append(fd)
                binds.append((fd, inside, writable))
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        return self._argv(command, binds, env, network=network), fds

    def _spawn_options(self, limits: Limits) -> dict:  # type: ignore[type-arg]
        return dict(stdin=subprocess.DEVNULL, preexec_fn=_limit(limits), env={})

    async def _execute(self, command: str, mounts: Sequence[tuple[str, str, bool]], env: Mapping[str, str],
                       limits: Limits, *, network: bool = False) -> Finished:
        """Run `command` with the host paths `mounts` (host, inside, writable) and the bounds of `limits`."""
        argv, fds = self._prepare(command, mounts, env, network=network)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, pass_fds=fds, process_group=0,
                **self._spawn_options(limits))
        finally:
            for fd in fds:
                os.close(fd)
        return await _collect(process, limits)

    def check(self) -> None:
        """Start `python3 -c pass` in a sandbox here, or raise SandboxError with bwrap's own reason."""
        workdir = tempfile.mkdtemp(prefix="probe-", dir=self.workdir)
        try:
            tree = self._lay(b"", {}, workdir)
            argv, fds = self._prepare("python3 -c pass", [(tree.root, REPO, True)],
                                      self._env(chant_env=False, env_bin=False), network=False)
            try:
                done = subprocess.run(argv, pass_fds=fds, capture_output=True, timeout=60, process_group=0,
                                      **self._spawn_options(Limits()))
            finally:
                for fd in fds:
                    os.close(fd)
        except (OSError, subprocess.SubprocessError) as error:
            raise SandboxError(str(error)) from error
        finally:
            shutil.rmtree(workdir, True)
        if done.returncode != 0:
            said = (done.stderr or done.stdout).decode("utf-8", "replace").strip().splitlines()
            raise SandboxError((said[-1] if said else f"exit status {done.returncode}")[:300])

    def _env(self, *, chant_env: bool, env_bin: bool) -> dict[str, str]:
        path = (ENV + "/bin:" if env_bin else "") + PYTHON + "/bin:" + SYSTEM_PATH
        env = {"PATH": path, "HOME": TMP, "LANG": "C.UTF-8", "CI": "true", "CHANT_JUNIT": JUNIT}
        if chant_env:
            env["CHANT_ENV"] = ENV
        return env

    def _lay(self, archive: bytes, overlay: Mapping[str, str], workdir: str) -> Tree:
        tree = lay_out(archive, overlay, os.path.join(workdir, "repo"))
        os.mkdir(os.path.join(workdir, "out"), 0o755)
        hand_over(tree.root, self.uid, self.gid)
        hand_over(os.path.join(workdir, "out"), self.uid, self.gid)
        return tree

    # -- the two operations ------------------------------------------------------------------------

    async def run_tests(self, archive: bytes, overlay: Mapping[str, str], command: str, *,
                        paths: Sequence[str] = (), select: str | None = None, setup: Setup | None = None,
                        limits: Limits = Limits()) -> TestRun:
        """Run the test command in a fresh copy of the tree (`archive` plus `overlay`) and read its JUnit report."""
        notes: list[str] = []
        command, ignored = expand(command, paths, select)
        if ignored:
            notes.append(SELECT_IGNORED)
        workdir = tempfile.mkdtemp(prefix="run-", dir=self.workdir)
        try:
            tree = await asyncio.to_thread(self._lay, archive, overlay, workdir)
            mounts = [(tree.root, REPO, True), (os.path.join(workdir, "out"), OUT, True)]
            env_bin = False
            if setup is not None and setup.env and os.path.isdir(setup.env):
                mounts.append((setup.env, ENV, False))
                env_bin = os.path.isdir(os.path.join(setup.env, "bin"))
            if setup is not None and setup.dependencies:
                before = dict(setup.dependencies)
                changed = sorted(p for p in set(before) | set(tree.dependencies)
                                 if before.get(p) != tree.dependencies.get(p))
                if changed:
                    notes.append(CHANGED_DEPENDENCY.format(paths=", ".join(changed[:5])))
            env = self._env(chant_env=any(m[1] == ENV for m in mounts), env_bin=env_bin)
            finished = await self._execute(command, mounts, env, limits)
            report = await asyncio.to_thread(read_regular, os.path.join(workdir, "out", "junit.xml"), junit.MAX_JUNIT)
            outcomes = junit.parse(report, tree.files) if report is not None else None
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
        return TestRun(finished.status, outcomes or (), finished.output, finished.killed, outcomes is not None,
                       tuple(notes), limits)

    def setup_key(self, dependencies: Mapping[str, str], command: str) -> str:
        material = json.dumps([CACHE_FORMAT, command, self.interpreter.identity, sorted(dependencies.items())])
        return hashlib.sha256(material.encode()).hexdigest()[:32]

    async def setup(self, archive: bytes, command: str, *, timeout: float) -> Setup:
        """Run the setup command once per key (dependency files, command, interpreter) with network, filling a
        cached $CHANT_ENV; a later call with the same key answers the cached result without running anything."""
        dependencies = await asyncio.to_thread(dependency_hashes, archive)
        deps = tuple(sorted(dependencies.items()))
        if not command.strip():
            return Setup(None, False, 0, "", "", deps)
        key = self.setup_key(dependencies, command)
        final = os.path.join(self.cache, key)
        cached = _cached(final, key, deps)
        if cached is not None:
            return cached
        os.makedirs(self.cache, mode=0o700, exist_ok=True)
        lock = os.open(os.path.join(self.cache, key + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
            cached = _cached(final, key, deps)  # another task or process made it while this one waited
            if cached is not None:
                return cached
            for name in os.listdir(self.cache):  # what a setup killed midway left: never counted as done
                if name.startswith(f".partial-{key}-"):
                    await asyncio.to_thread(shutil.rmtree, os.path.join(self.cache, name), True)
            partial = tempfile.mkdtemp(prefix=f".partial-{key}-", dir=self.cache)
            os.mkdir(os.path.join(partial, "env"), 0o755)
            hand_over(os.path.join(partial, "env"), self.uid, self.gid)
            workdir = tempfile.mkdtemp(prefix="setup-", dir=self.workdir)
            try:
                tree = await asyncio.to_thread(self._lay, archive, {}, workdir)
                mounts = [(tree.root, REPO, True), (os.path.join(workdir, "out"), OUT, True),
                          (os.path.join(partial, "env"), ENV, True)]
                finished = await self._execute(command, mounts, self._env(chant_env=True, env_bin=False),
                                               Limits(timeout=timeout), network=True)
            finally:
                await asyncio.to_thread(shutil.rmtree, workdir, True)
            if finished.status != 0 or finished.killed:
                await asyncio.to_thread(shutil.rmtree, partial, True)
                return Setup(None, True, finished.status, finished.output, key, deps, finished.killed)
            await asyncio.to_thread(hand_over, os.path.join(partial, "env"), os.geteuid(), os.getegid())
            with open(os.path.join(partial, "setup.json"), "w") as handle:
                json.dump({"status": finished.status, "output": finished.output}, handle)
            os.rename(partial, final)  # the one step that makes it count as done
            return Setup(os.path.join(final, "env"), True, finished.status, finished.output, key, deps)
        finally:
            os.close(lock)


def _cached(final: str, key: str, deps: tuple[tuple[str, str], ...]) -> Setup | None:
    try:
        with open(os.path.join(final, "setup.json")) as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return Setup(os.path.join(final, "env"), False, record.get("status"), record.get("output", ""), key, deps)


async def _collect(process: asyncio.subprocess.Process, limits: Limits) -> Finished:
    """Read the merged output, keeping its tail, until the command ends or passes a bound (then kill it all)."""
    assert process.stdout is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.timeout
    tail = bytearray()
    total = 0
    killed: str | None = None
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            killed = "timeout"
            break
        try:
            chunk = await asyncio.wait_for(process.stdout.read(64 * 1024), remaining)
        except asyncio.TimeoutError:
            killed = "timeout"
            break
        if not chunk:
            break
        total += len(chunk)
        tail += chunk
        if len(tail) > 2 * limits.output:
            del tail[: len(tail) - limits.output]
        if total > limits.flood:
            killed = "output"
            break
    if killed is None:
        try:
            status: int | None = await asyncio.wait_for(process.wait(), max(deadline - loop.time(), 0.01))
        except asyncio.TimeoutError:
            killed = "timeout"
    if killed is not None:
        _kill(process)
        try:  # read to the end: a paused pipe never sees it, and asyncio waits for the pipe before the exit
            await asyncio.wait_for(_drain(process.stdout), 30)
            await asyncio.wait_for(process.wait(), 30)
        except asyncio.TimeoutError:
            pass
        status = None
    text = bytes(tail[-limits.output:]).decode("utf-8", "replace")
    if total > limits.output:
        text = f"[{total - limits.output} earlier bytes of output not kept]\n" + text
    return Finished(status, killed, text)


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(1024 * 1024):
        pass


def _kill(process: asyncio.subprocess.Process) -> None:
    """Kill bwrap's whole process group; --die-with-parent and the pid namespace take everything inside with it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError as error:
        if error.errno != errno.ESRCH:
            raise


def expand(command: str, paths: Sequence[str], select: str | None) -> tuple[str, bool]:
    """The test command with `{paths}` and `{select}` filled (shell-quoted), and whether `select` was dropped.

    `select` (pytest's -k) goes where `{select}` is, else just before `{paths}`; a command with neither runs
    unfiltered and the result says so."""
    quoted = " ".join(shlex.quote(p if not p.startswith("-") else "./" + p) for p in paths)
    option = f"-k {shlex.quote(select)}" if select else ""
    ignored = False
    if "{select}" in command:
        command = command.replace("{select}", option)
    elif option and "{paths}" in command:
        quoted = f"{option} {quoted}".strip()
    elif option:
        ignored = True
    return command.replace("{paths}", quoted), ignored


__all__ = ["BwrapSandbox", "Interpreter", "SandboxError", "expand", "named_interpreter", "own_interpreter"]
