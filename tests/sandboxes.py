"""Whether this machine can run chantbot's sandbox (bubblewrap), found once for the whole test session."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def _found() -> tuple[bool, str]:
    from bot import sandbox

    found, why = sandbox.find(None)
    return found is not None, why


def sandbox_works() -> bool:
    """True where bubblewrap can start a sandbox; `sandbox_works.why` says why not otherwise."""
    works, why = _found()
    sandbox_works.why = why  # type: ignore[attr-defined]
    return works


sandbox_works.why = ""  # type: ignore[attr-defined]
