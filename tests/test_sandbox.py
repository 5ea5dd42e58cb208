"""The sandbox: what a repository's code can and cannot reach, its bounds, setup's cache, and real verdicts."""

from __future__ import annotations

import asyncio
import io
import os
import tarfile
import uuid
from pathlib import Path

import pytest

from bot.sandbox import (DEFAULT_TEST, Limits, SandboxUnavailable, default_setup, describe, detect, find)
from bot.sandbox.tree import TreeError, dependency_hashes, lay_out
from bot.stages import verdicts

CHECKOUT = Path(__file__).resolve().parents[1]
CALC = {
    "pyproject.toml": '[project]\nname = "calc"\nversion = "1"\n',
    "calc.py": "def add(a, b):\n    return a - b\n\n\ndef double(a):\n    return a * 2\n",
    "tests/test_double.py": "from calc import double\n\n\ndef test_double():\n    assert double(3) == 6\n",
}


def tarball(files: dict[str, str], links: dict[str, str] | None = None, raw: dict[str, str] | None = None) -> bytes:
    """A gzip tarball shaped like GitHub's: one top folder holding the tree (`raw` names are used as given)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for path, text in files.items():
            _add(tar, f"acme-calc-abc1234/{path}", text)
        for path, target in (links or {}).items():
            info = tarfile.TarInfo(f"acme-calc-abc1234/{path}")
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        for name, text in (raw or {}).items():
            _add(tar, name, text)
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory):
    """The bwrap sandbox, detected once; tests that need it skip, with the reason, where it cannot run."""
    made, why = find(None, cache=str(tmp_path_factory.mktemp("sandbox-cache")))
    if made is None:
        pytest.skip(f"no sandbox here: {why}")
    return made


def run(coroutine):  # noqa: ANN001, ANN201
    return asyncio.run(coroutine)


# -- isolation ---------------------------------------------------------------------------------------


def test_chantbots_environment_is_not_visible(sandbox, monkeypatch):
    monkeypatch.setenv("CHANTBOT_TEST_SECRET", "hunter2-do-not-leak")
    result = run(sandbox.run_tests(tarball(CALC), {}, "env"))
    assert result.status == 0
    assert "hunter2-do-not-leak" not in result.output
    names = {line.split("=", 1)[0] for line in result.output.splitlines() if "=" in line}
    assert names - {"PWD", "SHLVL", "_", "OLDPWD"} == {"PATH", "HOME", "LANG", "CI", "CHANT_JUNIT"}
    assert "CI=true" in result.output


def test_no_network_not_even_the_hosts_loopback(sandbox):
    async def scenario():
        reached = []
        server = await asyncio.start_server(lambda r, w: reached.append(w.close()), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        probe = (
            "import socket\n"
            f"for host, port in (('127.0.0.1', {port}), ('1.1.1.1', 53)):\n"
            "    try:\n"
            "        socket.create_connection((host, port), timeout=3)\n"
            "        print('CONNECTED', host)\n"
            "    except OSError as error:\n"
            "        print('REFUSED', host, type(error).__name__)\n"
            "try:\n"
            "    socket.getaddrinfo('example.com', 443)\n"
            "    print('RESOLVED')\n"
            "except OSError as error:\n"
            "    print('NO DNS', type(error).__name__)\n"
        )
        result = await sandbox.run_tests(tarball({**CALC, "probe.py": probe}), {}, "python3 probe.py")
        server.close()
        await server.wait_closed()
        return result, reached

    result, reached = run(scenario())
    assert "REFUSED 127.0.0.1 ConnectionRefusedError" in result.output
    assert "REFUSED 1.1.1.1" in result.output
    assert "NO DNS" in result.output
    assert "CONNECTED" not in result.output and "RESOLVED" not in result.output
    assert reached == []


def test_chantbots_files_are_not_readable(sandbox, tmp_path):
    home = tmp_path / "chantbot-home"
    home.mkdir()
    (home / ".env").write_text("GITHUB_WEBHOOK_SECRET=hunter2-home\n")
    command = (f"cat {home}/.env; cat {CHECKOUT}/pyproject.toml; cat /etc/shadow; ls {CHECKOUT}; "
               "ls /root /home /work; echo DONE")
    result = run(sandbox.run_tests(tarball(CALC), {}, command))
    assert "DONE" in result.output
    assert "hunter2-home" not in result.output
    assert 'name = "chantbot"' not in result.output
    assert not any(line.startswith("root:") for line in result.output.splitlines())  # /etc/shadow's first line
    assert "No such file or directory" in result.output and "Permission denied" in result.output


def test_writes_outside_the_copy_fail_or_vanish(sandbox, tmp_path):
    command = ("touch /usr/chant-x || echo USR-REFUSED; touch /etc/chant-x || echo ETC-REFUSED; "
               "touch /chant/python/chant-x || echo PYTHON-REFUSED; touch /tmp/chant-x || echo SLASH-TMP-REFUSED; "
               "echo hi > /var/tmp/chant-x && echo TMP-WRITTEN; echo hi > left-behind.txt && echo TREE-WRITTEN")
    first = run(sandbox.run_tests(tarball(CALC), {}, command))
    for said in ("USR-REFUSED", "ETC-REFUSED", "PYTHON-REFUSED", "SLASH-TMP-REFUSED", "TMP-WRITTEN", "TREE-WRITTEN"):
        assert said in first.output
    second = run(sandbox.run_tests(tarball(CALC), {}, "ls /var/tmp/chant-x left-behind.txt 2>&1; true"))
    assert second.output.count("No such file or directory") == 2
    assert not Path("/usr/chant-x").exists() and not Path("/etc/chant-x").exists()


def test_the_command_runs_as_an_unprivileged_user(sandbox):
    marker = f"chant-uid-probe-{uuid.uuid4().hex}"
    seen: list[str] = []

    async def scenario():
        task = asyncio.ensure_future(sandbox.run_tests(
            tarball(CALC), {}, f"id -u; grep -e CapEff -e NoNewPrivs /proc/self/status; sleep 3; : {marker}"))
        for _ in range(100):  # the sandbox's shell, as the host sees it
            await asyncio.sleep(0.05)
            for pid in os.listdir("/proc"):
                try:
                    if pid.isdigit() and marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes() \
                            and b"/bin/sh" in Path(f"/proc/{pid}/cmdline").read_bytes()[:20]:
                        status = Path(f"/proc/{pid}/status").read_text()
                        seen.append(next(line for line in status.splitlines() if line.startswith("Uid:")))
                except OSError:
                    continue
            if seen:
                break
        return await task

    result = run(scenario())
    expected = 65534 if os.geteuid() == 0 else os.geteuid()
    assert result.output.splitlines()[0] == str(expected)
    assert "CapEff:\t0000000000000000" in result.output and "NoNewPrivs:\t1" in result.output
    assert seen and seen[0].split()[1:] == [str(expected)] * 4  # real, effective, saved, filesystem uid outside
    assert expected != 0


def test_a_run_past_its_time_is_killed_with_everything_it_started(sandbox):
    marker = f"chant-spin-{uuid.uuid4().hex}"
    spinning = ("import subprocess\n\n\ndef test_spins():\n"
                f"    subprocess.Popen(['sleep', '600', '{marker}'])\n    while True:\n        pass\n")
    result = run(sandbox.run_tests(tarball(CALC), {"tests/test_spin.py": spinning}, DEFAULT_TEST,
                                   paths=["tests/test_spin.py"], limits=Limits(timeout=2)))
    assert result.killed == "timeout" and result.status is None
    assert result.render().startswith("killed: timeout after 2 s\n")
    verdict = verdicts.reproduce(result, {"tests/test_spin.py"})
    assert verdict.kind == "broken" and verdict.line == "the test run was killed (timeout after 2 s)"
    leftovers = [pid for pid in os.listdir("/proc") if pid.isdigit() and _cmdline_has(pid, marker)]
    assert leftovers == []


def _cmdline_has(pid: str, marker: str) -> bool:
    try:
        return marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_allocating_three_gib_fails(sandbox):
    command = "python3 -c 'b = bytearray(3 * 1024**3); print(\"ALLOCATED\")'"
    result = run(sandbox.run_tests(tarball(CALC), {}, command))
    assert "MemoryError" in result.output and "ALLOCATED" not in result.output
    assert result.status != 0


def test_processes_are_bounded(sandbox):
    script = ("import os, time\nmade = 0\ntry:\n    for _ in range(200):\n        if os.fork() == 0:\n"
              "            time.sleep(2)\n            os._exit(0)\n        made += 1\nexcept OSError as error:\n"
              "    print('REFUSED', type(error).__name__)\nprint('MADE', made)\n")
    result = run(sandbox.run_tests(tarball({**CALC, "forks.py": script}), {}, "python3 forks.py",
                                   limits=Limits(processes=40)))
    assert "REFUSED BlockingIOError" in result.output
    made = int(result.output.split("MADE ")[1].split()[0])
    assert made < 40


def test_output_keeps_only_its_tail_and_the_tool_result_stays_bounded(sandbox):
    command = "python3 -c 'print(\"x\" * 10_000_000); print(\"THE-END\")'"
    result = run(sandbox.run_tests(tarball(CALC), {}, command))
    assert result.status == 0 and result.killed is None
    assert "THE-END" in result.output
    assert len(result.output.encode()) <= Limits().output + 100  # the tail, and one line saying what was cut
    assert "earlier bytes of output not kept" in result.output
    rendered = result.render(limit=100_000)
    assert len(rendered) < 100_000 and "THE-END" in rendered
    flooded = run(sandbox.run_tests(tarball(CALC), {}, "yes", limits=Limits(flood=4 * 1024**2)))
    assert flooded.killed == "output" and "killed: more than 4 MiB of output" in flooded.render()


def test_a_committed_symlink_to_a_host_file_resolves_to_nothing(sandbox, tmp_path):
    secret = tmp_path / "host-secret.txt"
    secret.write_text("hunter2-symlink\n")
    archive = tarball(CALC, links={"leak.txt": str(secret), "hostname": "/etc/hostname",
                                   "up": "../../../../../../etc/hostname", "inside": "calc.py"})
    result = run(sandbox.run_tests(archive, {}, "cat leak.txt hostname up; cat inside; ls"))
    assert "hunter2-symlink" not in result.output
    assert Path("/etc/hostname").read_text().strip() not in result.output.split("def add")[0]
    assert "def add" in result.output  # a link inside the tree still works
    listed = result.output.split("return a * 2")[-1].split()
    assert "leak.txt" not in listed and "hostname" not in listed and "up" not in listed


def test_a_report_linked_to_a_host_file_is_not_read(sandbox, tmp_path):
    host = tmp_path / "host-report.xml"  # chantbot reads the report outside: it must not follow the link
    host.write_text('<testsuites><testsuite><testcase classname="secret" name="host"/></testsuite></testsuites>')
    result = run(sandbox.run_tests(tarball(CALC), {}, f'ln -s {host} "$CHANT_JUNIT"'))
    assert result.status == 0 and result.junit is False and result.outcomes == ()


# -- setup --------------------------------------------------------------------------------------------

SETUP = ('echo ran >> "$CHANT_ENV/count"; mkdir -p "$CHANT_ENV/bin"; '
         'printf "#!/bin/sh\\necho from-the-env\\n" > "$CHANT_ENV/bin/hello"; chmod +x "$CHANT_ENV/bin/hello"; '
         'test ! -e slow || sleep 60')


def test_setup_runs_once_per_key_and_its_environment_comes_first(sandbox, tmp_path):
    mine = detect(None, cache=str(tmp_path / "cache"))
    first = run(mine.setup(tarball(CALC), SETUP, timeout=60))
    second = run(mine.setup(tarball({**CALC, "README.md": "not a dependency file\n"}), SETUP, timeout=60))
    assert first.ran and first.status == 0 and first.env is not None
    assert not second.ran and second.key == first.key and second.env == first.env
    assert Path(first.env, "count").read_text() == "ran\n"  # the command ran once
    result = run(mine.run_tests(tarball(CALC), {}, 'hello; echo "$CHANT_ENV"', setup=second))
    assert result.output.splitlines()[:2] == ["from-the-env", "/chant/env"]
    assert result.notes == ()
    changed = run(mine.run_tests(tarball(CALC), {"pyproject.toml": CALC["pyproject.toml"] + "# pinned\n"}, "true",
                                 setup=second))
    assert changed.notes == ("a dependency file changed (pyproject.toml): the cached environment was used",)


def test_a_setup_killed_midway_does_not_count_as_done(sandbox, tmp_path):
    mine = detect(None, cache=str(tmp_path / "cache"))
    killed = run(mine.setup(tarball({**CALC, "slow": "1"}), SETUP, timeout=1))
    assert killed.ran and killed.env is None and killed.killed == "timeout"
    again = run(mine.setup(tarball(CALC), SETUP, timeout=60))
    assert again.ran and again.key == killed.key and again.env is not None
    assert Path(again.env, "count").read_text() == "ran\n"  # nothing of the killed run's is left in it
    other = run(mine.setup(tarball({**CALC, "pyproject.toml": '[project]\nname = "calc2"\n'}), SETUP, timeout=60))
    assert other.ran and other.key != again.key  # a changed dependency file is a new key


# -- real test runs and the verdicts ------------------------------------------------------------------

BUG_TEST = "from calc import add\n\n\ndef test_two_and_two_make_four():\n    assert add(2, 2) == 4\n"
BROKEN_TEST = "from calc import plus\n\n\ndef test_plus():\n    assert plus(2, 2) == 4\n"
PASSING_TEST = "from calc import add\n\n\ndef test_zero():\n    assert add(2, 0) == 2\n"
FIX = CALC["calc.py"].replace("return a - b", "return a + b")


def test_reproduce_verdicts_from_real_pytest_runs(sandbox):
    archive = tarball(CALC)
    path = "tests/test_issue.py"
    found = run(sandbox.run_tests(archive, {path: BUG_TEST}, DEFAULT_TEST, paths=[path]))
    verdict = verdicts.reproduce(found, {path})
    assert verdict.kind == "reproduced"
    assert verdict.test == "tests/test_issue.py::test_two_and_two_make_four"
    assert verdict.line == "assert 0 == 4"

    broken = run(sandbox.run_tests(archive, {path: BROKEN_TEST}, DEFAULT_TEST, paths=[path]))
    verdict = verdicts.reproduce(broken, {path})
    assert verdict.kind == "broken" and verdict.test == path
    assert "ImportError" in verdict.line or "cannot import name 'plus'" in verdict.line

    passing = run(sandbox.run_tests(archive, {path: PASSING_TEST}, DEFAULT_TEST, paths=[path]))
    verdict = verdicts.reproduce(passing, {path})
    assert verdict.kind == "not reproduced" and "tests/test_issue.py::test_zero" in verdict.line

    rendered = found.render()
    assert rendered.startswith("exit status: 1\ntests: 1 failed\nFAILED tests/test_issue.py::test_two_and_two_make_four")


def test_implement_verdict_from_real_pytest_runs(sandbox):
    archive = tarball(CALC)
    path = "tests/test_issue.py"
    base = run(sandbox.run_tests(archive, {}, DEFAULT_TEST))
    fixed = {path: BUG_TEST, "calc.py": FIX}
    reproduction = run(sandbox.run_tests(archive, fixed, DEFAULT_TEST, paths=[path]))
    suite = run(sandbox.run_tests(archive, fixed, DEFAULT_TEST))
    assert verdicts.implement(reproduction, suite, base).kind == "green"

    regressed = {path: BUG_TEST, "calc.py": FIX.replace("return a * 2", "return a * 3")}
    reproduction = run(sandbox.run_tests(archive, regressed, DEFAULT_TEST, paths=[path]))
    suite = run(sandbox.run_tests(archive, regressed, DEFAULT_TEST))
    verdict = verdicts.implement(reproduction, suite, base)
    assert verdict.kind == "red" and verdict.test == "tests/test_double.py::test_double"
    assert verdict.line == "assert 9 == 6"


def test_select_filters_by_name(sandbox):
    overlay = {"tests/test_issue.py": BUG_TEST + "\n\n" + PASSING_TEST.split("\n\n\n")[1]}
    result = run(sandbox.run_tests(tarball(CALC), overlay, DEFAULT_TEST, select="zero"))
    assert [(o.name, o.outcome) for o in result.outcomes] == [("tests/test_issue.py::test_zero", "passed")]
    custom = run(sandbox.run_tests(tarball(CALC), overlay, "python3 -m pytest -q", select="zero"))
    assert custom.notes == ("select was not applied: the test command has neither {select} nor {paths}",)
    assert custom.junit is False


# -- without bwrap, and the pure parts ----------------------------------------------------------------


def test_settings_and_the_start_up_line(monkeypatch, tmp_path):
    assert detect("none") is None
    assert describe(None, "CHANTBOT_SANDBOX=none").startswith("sandbox: none — CHANTBOT_SANDBOX=none; agents cannot")
    with pytest.raises(SandboxUnavailable, match="must be one of bwrap, none"):
        detect("docker")
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without bubblewrap
    assert find(None) == (None, "bubblewrap (bwrap) is not installed")
    with pytest.raises(SandboxUnavailable) as raised:
        detect("bwrap")
    assert "\n" not in str(raised.value) and "apt-get install bubblewrap" in str(raised.value)


def test_default_setup_follows_the_repositorys_files():
    with_extra = '[project]\nname = "x"\n[project.optional-dependencies]\ntest = ["pytest"]\n'
    assert default_setup({"pyproject.toml": with_extra}).endswith("-e '.[test]' pytest")
    assert default_setup({"setup.py": "", "requirements.txt": ""}).endswith("-e '.' -r requirements.txt pytest")
    assert default_setup({"pyproject.toml": "[tool.ruff]\n"}) == ""
    assert default_setup({"package.json": "{}", "index.js": ""}) == ""


def test_a_hostile_tarball_writes_nothing_outside_the_copy(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = tarball({"ok.txt": "fine"}, links={"door": str(outside), "loop": "loop"},
                      raw={"acme-calc-abc1234/../escaped.txt": "no", "/abs.txt": "no",
                           "acme-calc-abc1234/door/through.txt": "no", "acme-calc-abc1234/.git/config": "no"})
    tree = lay_out(archive, {"door/x.txt": "overlay"}, str(tmp_path / "copy"))
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "escaped.txt").exists() and not Path("/abs.txt").exists()
    assert sorted(tree.files) == ["door/x.txt", "ok.txt"]
    assert (tmp_path / "copy" / "door").is_dir() and not (tmp_path / "copy" / "door").is_symlink()
    with pytest.raises(TreeError):
        lay_out(archive, {"../x": "no"}, str(tmp_path / "copy2"))
    assert dependency_hashes(tarball(CALC)).keys() == {"pyproject.toml"}


def test_a_test_that_needs_a_temporary_folder_gets_one(sandbox):
    files = {**CALC, "tests/test_tmp.py": "def test_tmp(tmp_path):\n    (tmp_path / 'x').write_text('y')\n"
                                          "    assert (tmp_path / 'x').read_text() == 'y'\n"}
    result = run(sandbox.run_tests(tarball(files), {}, DEFAULT_TEST, paths=["tests/test_tmp.py"]))
    assert [(o.name, o.outcome) for o in result.outcomes] == [("tests/test_tmp.py::test_tmp", "passed")]
