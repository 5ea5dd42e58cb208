"""chantbot: a GitHub App that runs chant's research-first maintainer workflow on issues."""

__version__ = "0.1.0"
