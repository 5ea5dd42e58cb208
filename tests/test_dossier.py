"""The research dossier's pure parts: stack-trace locations, identifiers, and paths resolved in the repository."""

import time

from bot.stages import dossier
from bot.stages.tools import Snapshot

SNAP = Snapshot("c", {"src/widgets/layout.py": "a\nb\n", "src/widgets/core.py": "x\n", "tests/core.py": "y\n"})


def test_trace_locations_from_python_js_and_plain_references():
    text = ('File "/opt/app/widgets/layout.py", line 2, in f\n  at render (web/app.js:10:5)\n'
            "see src/widgets/core.py:1 and again src/widgets/core.py:1")
    assert dossier.trace_locations(text) == [("/opt/app/widgets/layout.py", 2), ("web/app.js", 10),
                                             ("src/widgets/core.py", 1)]


def test_paths_resolve_by_unique_suffix_only():
    assert dossier.resolve("/opt/app/widgets/layout.py", SNAP) == "src/widgets/layout.py"
    assert dossier.resolve("core.py", SNAP) is None  # two files end so: ambiguous
    assert dossier.resolve("elsewhere.py", SNAP) is None


def test_identifiers_look_like_code():
    text = "Calling `columns(1, 2)` and `Widget.resize()` fails in parse_size when MyWidget grows"
    assert dossier.identifiers(text) == ["columns", "resize", "parse_size", "MyWidget"]


def test_hostile_text_is_read_in_linear_time():
    for hostile in ("a" * 1_000_000, "a/" * 500_000, "a." * 500_000, "`" * 1_000_000, ("x_" * 30 + " ") * 30_000):
        started = time.perf_counter()
        dossier.trace_locations(hostile)
        dossier.identifiers(hostile)
        assert time.perf_counter() - started < 1.0
