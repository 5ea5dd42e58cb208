"""chant prompts: loads `prompts/<name>.md` (or a repository's override) and renders `{{spec.*}}` variables."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from bot.specs import parse_front_matter

PACKAGED_DIR = Path(__file__).resolve().parent / "prompt_files"  # in an installed package (see setup.py)
CHECKOUT_DIR = Path(__file__).resolve().parent.parent / "prompts"  # in a checkout, the source
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,49}$")
_VARIABLE = re.compile(r"\{\{([a-z_]+(?:\.[a-z_]+)*)\}\}")


@dataclass(frozen=True)
class Prompt:
    """A chant prompt: front matter `name`/`purpose` and a Markdown body with `{{…}}` variables."""

    name: str
    purpose: str
    body: str


@functools.lru_cache(maxsize=None)
def packaged(name: str) -> Prompt:
    """The prompt chantbot ships as `prompts/<name>.md`. Raises ValueError for an unknown name."""
    return parse(packaged_text(name), name=name)


def packaged_text(name: str) -> str:
    """The packaged prompt file `prompts/<name>.md` as it is (front matter included), for chant itself."""
    path = prompts_dir() / f"{_checked(name)}.md"
    if not path.is_file():
        raise ValueError(f"no packaged prompt named {name!r}")
    return path.read_text(encoding="utf-8")


def prompts_dir() -> Path:
    """Where the packaged prompts are: inside the installed package, else the checkout's `prompts/`."""
    return PACKAGED_DIR if PACKAGED_DIR.is_dir() else CHECKOUT_DIR


def parse(text: str, *, name: str) -> Prompt:
    """A prompt file; its optional front matter may set `name` and `purpose`. Raises ValueError on bad YAML."""
    try:
        meta, body = parse_front_matter(text)
    except ValueError as exc:
        raise ValueError(f"prompt {name!r}: {exc}") from None
    own_name, purpose = meta.get("name"), meta.get("purpose")
    return Prompt(name=own_name if isinstance(own_name, str) and own_name else name,
                  purpose=purpose if isinstance(purpose, str) else "",
                  body=body.lstrip("\n"))


def render(prompt: Prompt, variables: Mapping[str, str]) -> str:
    """The body with chant variables (`{{spec.title}}` …) replaced; unknown variables are left as they are.

    One pass, so a value that itself contains `{{…}}` (an issue title, say) is never expanded.
    """
    return _VARIABLE.sub(lambda m: variables.get(m.group(1), m.group(0)), prompt.body)


def override_path(name: str) -> str:
    """Where a repository keeps its own version of a prompt (it replaces the packaged one)."""
    return f".chant/prompts/{_checked(name)}.md"


def _checked(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"invalid prompt name {name!r}")
    return name
