"""The research dossier's pure parts: stack-trace locations, identifiers, and paths resolved in the repository."""

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


def test_hostile_text_is_read_only_to_its_bound_and_gives_bounded_answers():
    # how long these take on a megabyte is bench/hostile_text.py's (dossier.* rows)
    trace = 'File "src/widgets/core.py", line 1, in f\n'
    for hostile in ("a" * 1_000_000, "a/" * 500_000, "a." * 500_000, "`" * 1_000_000, ("x_" * 30 + " ") * 30_000):
        assert dossier.trace_locations(hostile) == []
        assert len(dossier.identifiers(hostile)) <= dossier.MAX_IDENTIFIERS
        assert dossier.trace_locations(trace + hostile) == [("src/widgets/core.py", 1)]
        assert dossier.trace_locations(hostile[:dossier.MAX_TEXT] + trace) == []  # past the bound: never read
    many = " ".join(f"name_{i}()" for i in range(10_000))
    found = dossier.identifiers(many)
    assert len(found) == dossier.MAX_IDENTIFIERS and all(name.startswith("name_") for name in found)
