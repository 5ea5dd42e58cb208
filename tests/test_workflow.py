"""The workflow module: each stage once, and the path rules the agent's writes follow."""

from bot import workflow
from bot.workflow import DOC_PATHS, TEST_PATHS, path_allowed


def test_every_stage_has_one_entry_and_the_chain_is_in_order():
    names = [s.name for s in workflow.STAGES]
    assert len(names) == len(set(names))
    assert workflow.CHAIN == ("triage", "reproduce", "research", "implement", "review", "document")
    assert workflow.previous("research") == "reproduce" and workflow.previous("triage") is None


def test_labels_and_commands_find_their_stage():
    assert workflow.started_by("needs-reproduction").name == "reproduce"
    assert workflow.started_by("ready-for-research").name == "research"
    assert workflow.started_by("ready-for-implementation").name == "implement"
    assert workflow.started_by("in-review").name == "review"
    assert workflow.started_by("deferred") is None
    assert workflow.by_command("release-notes").role == "maintain"
    assert workflow.stage("implement").auto is False  # a person always starts an implementation


def test_tools_follow_the_write_paths():
    assert workflow.stage("research").tools == ("list_files", "read_file", "search_code", "submit")
    assert "write_file" in workflow.stage("reproduce").tools
    assert "write_file" not in workflow.stage("review").tools


def test_test_paths_take_test_files_only():
    for path in ("tests/test_core.py", "test_x.py", "src/pkg/tests/test_a.py", "pkg/foo_test.go", "web/a.test.ts"):
        assert path_allowed(path, TEST_PATHS), path
    for path in ("src/widgets/core.py", "src/test_helpers/evil.py", "setup.py", "README.md"):
        assert not path_allowed(path, TEST_PATHS), path


def test_doc_paths_take_documentation_only():
    assert all(path_allowed(p, DOC_PATHS) for p in ("README.md", "docs/usage.md", "docs/a/b.txt", "pkg/CHANGES.rst"))
    assert not any(path_allowed(p, DOC_PATHS) for p in ("src/widgets/core.py", "tests/test_core.py"))


def test_glob_stars_stay_within_a_folder():
    assert path_allowed("docs/x.md", ("docs/*.md",)) and not path_allowed("docs/a/x.md", ("docs/*.md",))
    assert path_allowed("docs/a/x.md", ("docs/**/*.md",)) and path_allowed("docs/x.md", ("docs/**/*.md",))
