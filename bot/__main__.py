"""Command line: `python -m bot serve|web|worker|demo|eval`. Settings are read here, once."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from typing import Sequence

from aiohttp import web

from bot.settings import Settings, SettingsError, from_env


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json"
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def load_settings(*, require_app: bool = True) -> Settings:
    try:
        return from_env(os.environ, require_app=require_app)
    except SettingsError as exc:
        print(f"chantbot: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


async def _serve(settings: Settings, *, with_workers: bool) -> None:
    from bot.runtime import Runtime

    runtime = Runtime(settings)
    await runtime.open()
    # Heroku allows 30 s after SIGTERM: a few seconds for open requests, then the workers' 25 s drain.
    runner = web.AppRunner(runtime.web_app(with_workers=with_workers), handle_signals=False, shutdown_timeout=3.0)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    logging.getLogger("bot").info("chantbot listening on http://%s:%d (%s)", settings.host, settings.port,
                                  "web and workers" if with_workers else "web only")
    await _until_signal()
    await runner.cleanup()  # stops taking requests, then drains the workers (cleanup context)
    await runtime.close()


async def _worker(settings: Settings) -> None:
    from bot.runtime import Runtime

    runtime = Runtime(settings)
    await runtime.open()
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run_worker_only(stop))
    await _until_signal()
    stop.set()
    await task
    await runtime.close()


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="chantbot: research-first issue triage "
                                     "and chant's maintainer workflow on GitHub.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("serve", help="web server and workers in one process (the default deployment)")
    sub.add_parser("web", help="the web half only: verify and store webhook deliveries")
    sub.add_parser("worker", help="the worker half only: run stored jobs")
    demo = sub.add_parser("demo", help="the offline showcase: the whole flow against the built-in GitHub simulator")
    demo.add_argument("--quiet", action="store_true", help="print only the summary of each case")
    evaluate = sub.add_parser("eval", help="measure a triager on labelled issues (precision, recall, F1)")
    from bot import evaluate as evaluation

    evaluation.add_arguments(evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("serve", "web", "worker"):
        settings = load_settings()
        setup_logging(settings.log_format)
        from bot.store import StoreError

        try:
            if args.command == "worker":
                asyncio.run(_worker(settings))
            else:
                asyncio.run(_serve(settings, with_workers=args.command == "serve"))
        except StoreError as exc:
            print(f"chantbot: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "demo":
        from bot import demo

        setup_logging("text")
        logging.getLogger().setLevel(logging.WARNING)
        return asyncio.run(demo.run(quiet=args.quiet, api_key=os.environ.get("ANTHROPIC_API_KEY")))
    from bot import evaluate as evaluation

    args.api_key = os.environ.get("ANTHROPIC_API_KEY")
    args.model = getattr(args, "model", None) or os.environ.get("BOT_MODEL")
    return asyncio.run(evaluation.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
