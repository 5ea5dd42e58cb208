"""A stateful GitHub REST simulator: the fake GitHub behind `python -m bot demo` and every test."""

from bot.simulator.keys import app_key_pair
from bot.simulator.rest import GitHubError
from bot.simulator.server import GitHubSimulator

__all__ = ["GitHubError", "GitHubSimulator", "app_key_pair"]
