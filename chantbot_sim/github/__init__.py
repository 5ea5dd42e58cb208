"""A stateful GitHub REST simulator: the fake GitHub behind `python -m bot demo` and every test."""

from chantbot_sim.github.keys import app_key_pair
from chantbot_sim.github.rest import GitHubError
from chantbot_sim.github.server import GitHubSimulator

__all__ = ["GitHubError", "GitHubSimulator", "app_key_pair"]
