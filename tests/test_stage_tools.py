"""The agent's repository tools: real file content, bounded answers, and refusals with reasons."""

import io
import tarfile

from bot.stages.tools import (MAX_WRITE_BYTES, Snapshot, Workspace, check_path, definitions, snapshot_from_tarball)
from bot.workflow import TEST_PATHS

CORE = "def parse_size(text):\n    if text.endswith('px'):\n        return int(text[:-3])\n    return int(text)\n"
SNAP = Snapshot("c0ffee", {"src/widgets/core.py": CORE, "src/widgets/__init__.py": "",
                           "tests/test_core.py": "def test_ok():\n    assert True\n", "README.md": "# widgets\n"},
                frozenset({"assets/logo.png"}))


def test_list_files_shows_one_folder_level():
    ws = Workspace(SNAP)
    assert ws.list_files("").text.splitlines() == ["README.md", "assets/", "src/", "tests/"]
    assert ws.list_files("src/widgets").text.splitlines() == ["__init__.py", "core.py"]
    assert ws.list_files("nope").is_error


def test_read_file_numbers_lines_and_windows():
    ws = Workspace(SNAP)
    full = ws.read_file("src/widgets/core.py").text
    assert "3:         return int(text[:-3])" in full and full.startswith("src/widgets/core.py (lines 1-4 of 4)")
    window = ws.read_file("src/widgets/core.py", 2, 3).text
    assert "2:" in window and "3:" in window and "1:" not in window.split("\n", 1)[1]
    assert ws.read_file("assets/logo.png").is_error
    assert ws.read_file("src/widgets/core.py", 9).is_error


def test_search_answers_path_line_text():
    hits = Workspace(SNAP).search_code("PARSE_SIZE").text.splitlines()
    assert hits == ["src/widgets/core.py:1: def parse_size(text):"]
    assert Workspace(SNAP).search_code("parse_size", "tests").text.startswith("no match")
    assert Workspace(SNAP).search_code("").is_error


def test_hostile_paths_are_refused_with_a_reason():
    for path in ("../outside.txt", "/etc/passwd", "../../etc/passwd", ".git/config", "src/.git/hooks/x",
                 ".github/workflows/evil.yml", "a/./b", "a//b", "x\x00y", "a\\b", "é" * 400):
        assert check_path(path) is not None, path
    ws = Workspace(SNAP, TEST_PATHS)
    for path in ("../outside.txt", ".git/config", ".github/workflows/evil.yml"):
        result = ws.call("write_file", {"path": path, "content": "x"})
        assert result.is_error and path not in ws.overlay
    assert ws.call("read_file", {"path": "../../etc/passwd"}).is_error


def test_writes_follow_the_stage_paths_and_size_limits():
    ws = Workspace(SNAP, TEST_PATHS)
    assert ws.call("write_file", {"path": "src/widgets/core.py", "content": "x"}).is_error
    big = ws.call("write_file", {"path": "tests/big.txt", "content": "x" * (MAX_WRITE_BYTES + 1)})
    assert big.is_error and "bytes" in big.text
    made = ws.call("write_file", {"path": "tests/test_px.py", "content": "def test_px():\n    assert False\n"})
    assert not made.is_error and ws.changes() == {"tests/test_px.py": "def test_px():\n    assert False\n"}
    assert "test_px" in ws.call("read_file", {"path": "tests/test_px.py"}).text  # the run reads its own writes
    assert ws.call("search_code", {"query": "assert False"}).text.startswith("tests/test_px.py:2:")


def test_read_only_stages_have_no_write_tool():
    ws = Workspace(SNAP)
    result = ws.call("write_file", {"path": "tests/x.py", "content": "x"})
    assert result.is_error and "no tool" in result.text
    assert ws.call("run_shell", {"command": "cat /etc/passwd"}).is_error
    assert ws.call("read_file", "not an object").is_error


def test_unchanged_writes_are_not_changes():
    ws = Workspace(SNAP, ("**",))
    ws.call("write_file", {"path": "README.md", "content": "# widgets\n"})
    assert ws.changes() == {}


def test_snapshot_from_a_github_tarball():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (("acme-widgets-c0ffee/src/a.py", b"print(1)\n"), ("acme-widgets-c0ffee/bin.dat", b"\0\1"),
                           ("acme-widgets-c0ffee/.git/config", b"x"), ("acme-widgets-c0ffee/../evil", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    snap = snapshot_from_tarball("c0ffee", buffer.getvalue())
    assert snap.files == {"src/a.py": "print(1)\n"} and snap.unreadable == {"bin.dat"}


def test_tool_definitions_are_the_contracts():
    defs = definitions(("list_files", "read_file", "search_code", "write_file", "submit"),
                       {"type": "object"}, "Submit it.")
    assert [d["name"] for d in defs] == ["list_files", "read_file", "search_code", "write_file", "submit"]
    assert defs[1]["input_schema"]["required"] == ["path"]
