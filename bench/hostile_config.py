"""Time `.github/chantbot.yml` parsing on hostile files: alias bombs, self-reference, deep nesting, long alias
chains, a file at the size limit, and a file with a problem in every line.

Each file is parsed in a child process stopped after `--timeout` seconds, so a parse that would run for
hours is reported, not waited for. The tests check what chantbot answers to these files; this checks how
long it takes (each should be well under a second).

    python bench/hostile_config.py [--timeout 30] [--repeat 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import time


def billion_laughs(levels: int) -> str:
    """A few hundred bytes of YAML aliases that expand to 9**levels strings."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\nlabels: *l{levels}\n"


def files() -> dict[str, str]:
    """Name → a hostile configuration file."""
    return {
        "billion laughs (9 levels)": billion_laughs(9),
        "recursive alias": "labels: &a [*a]\n",
        "5000 nested brackets": "labels: " + "[" * 5000 + "]" * 5000 + "\n",
        "1000-alias chain": "a0: &a0 1\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 1000)),
        "over 64 KiB": "# padding\n" * 7000,
        "just under 64 KiB of comments": "# padding\n" * 6500 + "gate: never\n",
        "a problem on every line": "\n".join(f"unknown_{i}: {'x' * 2000}" for i in range(25))
                                   + "\nlabels: {priority: {high: '" + "y" * 3000 + "'}}\n",
        "every section wrong": "stages: {research: {max_usd: -1}}\ncommands: {approve: boss}\ngate: sometimes\n"
                               "budget: {daily_usd: -1}\nsandbox: {timeout: 0}\nlabels: 3\nneeds_info: 0\n",
    }


def _child(name: str, repeat: int, out: "multiprocessing.connection.Connection") -> None:
    from bot import repoconfig

    text = files()[name]
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        repoconfig.parse(text)
        best = min(best, time.perf_counter() - started)
    out.send(best)


def timed(name: str, repeat: int, timeout: float) -> float | None:
    """The best of `repeat` parses of the named file, in seconds; None when stopped at `timeout`."""
    receive, send = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.Process(target=_child, args=(name, repeat, send), daemon=True)
    child.start()
    result = receive.recv() if receive.poll(timeout) else None
    if child.is_alive():
        child.kill()
    child.join()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before one file's parses are stopped")
    parser.add_argument("--repeat", type=int, default=3, help="parses of each file (the best is shown)")
    args = parser.parse_args(argv)
    print(f"{'file':34} {'bytes':>7} {'parse s':>9}")
    for name, text in files().items():
        seconds = timed(name, args.repeat, args.timeout)
        shown = f">{args.timeout:.0f}" if seconds is None else f"{seconds:.4f}"
        print(f"{name:34} {len(text.encode()):>7} {shown:>9}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
