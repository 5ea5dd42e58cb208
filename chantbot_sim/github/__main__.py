"""`python -m chantbot_sim.github`: run the GitHub simulator as its own process."""

from __future__ import annotations

import argparse
import asyncio

from chantbot_sim.github.server import serve_forever


def main(argv: list[str] | None = None) -> None:
    """Serve the simulator until interrupted, printing "listening on http://HOST:PORT"."""
    parser = argparse.ArgumentParser(prog="python -m chantbot_sim.github", description="A GitHub REST simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument("--app-id", type=int, required=True)
    parser.add_argument("--public-key", required=True, help="PEM file with the App's public key")
    parser.add_argument("--app-slug", default="chantbot")
    parser.add_argument("--seed", help="JSON file shaped like the body of POST /_sim/state")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve_forever(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
