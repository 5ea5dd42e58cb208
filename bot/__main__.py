"""Command line: `python -m bot serve|web|worker|migrate|demo|try|eval|register|receive`. Settings are read here, once."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import errno
import json
import logging
import os
import signal
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence
from urllib.parse import urlsplit

from aiohttp import web

from bot.settings import ENVIRONMENT, Settings, SettingsError, from_env, with_env_file

if TYPE_CHECKING:
    from bot.runtime import Runtime


class StartupError(Exception):
    """The process cannot start (database, port); the message is the one line an operator sees."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        entry = {"time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json"
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # the anthropic SDK's client logs every request


def fail(message: str) -> SystemExit:
    """Print one line for the operator; the caller raises the result (exit status 2)."""
    print(f"chantbot: {message}", file=sys.stderr)
    return SystemExit(2)


def read_environment(env_file: str | None) -> dict[str, str]:
    """The process environment, plus the env file's variables where the environment does not set them."""
    try:
        return with_env_file(os.environ, env_file)
    except SettingsError as exc:
        raise fail(str(exc)) from None


def load_settings(env: Mapping[str, str] | None = None, *, require_app: bool = True,
                  require_secret: bool | None = None) -> Settings:
    try:
        return from_env(os.environ if env is None else env, require_app=require_app, require_secret=require_secret)
    except SettingsError as exc:
        raise fail(str(exc)) from None


def describe_database(url: str) -> str:
    """DATABASE_URL without credentials, for messages."""
    if url.startswith("sqlite:///"):
        return url
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def sqlite_problem(url: str) -> str | None:
    """Why an SQLite DATABASE_URL cannot be opened, found before the driver tries (None: no reason known)."""
    if not url.startswith("sqlite:///") or url in ("sqlite:///", "sqlite:///:memory:"):
        return None
    path = Path(url[len("sqlite:///"):])
    if path.is_dir():
        return f"{path} is a folder"
    if not path.parent.is_dir():
        return f"the folder {path.parent} does not exist"
    if not os.access(path if path.exists() else path.parent, os.R_OK | os.W_OK):
        return f"no permission to {'write' if path.exists() else 'create'} {path}"
    return None


async def open_runtime(runtime: "Runtime") -> str:
    """Open the runtime's store and clients and check the App with GitHub; which App it is, for the log.

    An unusable database, or credentials GitHub refuses, are a StartupError."""
    database = describe_database(runtime.settings.database_url)
    if problem := sqlite_problem(runtime.settings.database_url):
        raise StartupError(f"cannot use the database {database} (DATABASE_URL): {problem}")
    from bot.sandbox import SandboxUnavailable

    try:
        runtime.open_sandbox()
    except SandboxUnavailable as exc:
        raise StartupError(str(exc)) from None
    try:
        await runtime.open()
    except Exception as exc:  # noqa: BLE001 - whatever the database driver raises, the operator sees one line
        with contextlib.suppress(Exception):
            await runtime.close()
        raise StartupError(f"cannot use the database {database} (DATABASE_URL): {_reason(exc)}") from None
    try:
        return await check_app(runtime)
    except StartupError:
        await runtime.close()
        raise


async def check_app(runtime: "Runtime") -> str:
    """Ask GitHub who the App is, so a key that is not GITHUB_APP_ID's or a wrong GITHUB_API_URL stops start-up."""
    from gidgethub import HTTPException

    from bot.github import AppCheckFailed

    assert runtime.ctx is not None
    log = logging.getLogger("bot")
    try:
        app = await runtime.ctx.github.identify()
    except AppCheckFailed as exc:
        raise StartupError(str(exc)) from None
    except HTTPException as exc:  # GitHub failing on its side: not the operator's mistake, jobs retry later
        log.warning("could not check the App's credentials: GitHub answered %s to GET /app; starting anyway",
                    exc.status_code)
        return f"App {runtime.settings.app_id}"
    return f"App {app.get('slug') or app.get('name') or '?'} (id {app.get('id')})"


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(text.split())[:200]


async def _listen(runner: web.AppRunner, settings: Settings) -> None:
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except OSError as exc:
        what = "the port is in use" if exc.errno == errno.EADDRINUSE else _reason(exc)
        raise StartupError(f"cannot listen on {settings.host}:{settings.port} (HOST, PORT): {what}") from None


async def _serve(settings: Settings, *, with_workers: bool) -> None:
    from bot.runtime import Runtime

    runtime = Runtime(settings)
    app = await open_runtime(runtime)
    # Heroku allows 30 s after SIGTERM: a few seconds for open requests, then the workers' 25 s drain.
    runner = web.AppRunner(runtime.web_app(with_workers=with_workers), handle_signals=False, shutdown_timeout=3.0)
    await runner.setup()
    try:
        await _listen(runner, settings)
    except StartupError:
        await runner.cleanup()
        await runtime.close()
        raise
    logging.getLogger("bot").info("chantbot listening on http://%s:%d (%s) as GitHub %s at %s", settings.host,
                                  runner.addresses[0][1], "web and workers" if with_workers else "web only", app,
                                  settings.github_api_url)
    logging.getLogger("bot").info("%s", runtime.sandbox_line)
    await _until_signal()
    await runner.cleanup()  # stops taking requests, then drains the workers (cleanup context)
    await runtime.close()


async def _worker(settings: Settings) -> None:
    from bot.runtime import Runtime

    runtime = Runtime(settings)
    app = await open_runtime(runtime)
    runner = web.AppRunner(runtime.status_app(), handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    log = logging.getLogger("bot")
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
        log.info("chantbot worker running %d jobs at once as GitHub %s; /healthz and /metrics on http://%s:%d",
                 settings.concurrency, app, settings.host, settings.port)
    except OSError as exc:  # e.g. next to `web` on one machine with one PORT: work on, unwatched
        log.warning("chantbot worker running %d jobs at once; no /healthz (port %d: %s)", settings.concurrency,
                    settings.port, _reason(exc))
    log.info("%s", runtime.sandbox_line)
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run_worker_only(stop))
    await _until_signal()
    stop.set()
    await task
    await runner.cleanup()
    await runtime.close()


async def _migrate(source: str | None, target: str | None, env: Mapping[str, str] | None = None) -> int:
    """Apply the schema migrations (to DATABASE_URL), or copy the durable state from `source` to `target`."""
    from bot.store import StoreError, open_store
    from bot.store.copy import copy_state

    if (source is None) != (target is None):
        print("chantbot: migrate copies with both --from URL and --to URL (or neither: update DATABASE_URL's schema)",
              file=sys.stderr)
        return 2
    env = os.environ if env is None else env
    urls = [source, target] if source and target else [env.get("DATABASE_URL", "").strip() or "sqlite:///chantbot.db"]
    stores = []
    try:
        for url in urls:
            store = open_store(url)
            try:
                await store.open()
            except StoreError as exc:
                print(f"chantbot: cannot use the database {describe_database(url)}: {exc}", file=sys.stderr)
                return 2
            stores.append(store)
            print(f"{describe_database(url)}: schema at version {await store.schema_version()}")
        if len(stores) == 2:
            counts = await copy_state(stores[0], stores[1], report=lambda line: print(f"  copied {line}"))
            print(f"copied {sum(counts.values())} rows from {describe_database(urls[0])} to "
                  f"{describe_database(urls[1])}")
        return 0
    except StoreError as exc:
        print(f"chantbot: {exc}", file=sys.stderr)
        return 2
    finally:
        for store in stores:
            await store.close()


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def environment_help() -> str:
    """The environment a server process reads, for `--help`."""
    width = max(len(name) for name, _, _ in ENVIRONMENT)
    lines = ["environment (an --env-file fills in what the environment does not set):"]
    for name, default, meaning in ENVIRONMENT:
        lines.append(f"  {name:<{width}}  {meaning}{f' [{default}]' if default else ''}")
    return "\n".join(lines)


def _env_file_option(parser: argparse.ArgumentParser, *, default: str | None = None) -> None:
    parser.add_argument("--env-file", metavar="PATH", default=default,
                        help="read KEY=VALUE lines from PATH; variables already in the environment win")


TOP_EPILOG = """\
to try chantbot before installing it:
  python -m bot demo            the whole flow on a built-in example, offline
  python -m bot try PATH ...    chantbot on your own repository (a local clone) and an issue text, offline
  python -m chantbot_sim.github the GitHub simulator the demo and the tests use, as a server to point
                                GITHUB_API_URL (and `receive`) at

`python -m bot COMMAND --help` describes each command."""

SERVER_HELP = {
    "serve": ("web server and workers in one process (the default deployment)",
              "Take webhook deliveries on PORT (POST /webhook, GET /healthz, GET /metrics) and run the jobs they "
              "lead to, BOT_CONCURRENCY at a time. Start-up checks the database and asks GitHub for the App "
              "(GITHUB_APP_ID with its private key); a problem stops it with one line and exit status 2."),
    "web": ("the web half only: verify and store webhook deliveries",
            "Take webhook deliveries on PORT and store them in DATABASE_URL for `worker` processes to run "
            "(scale-out; see docs/operating.md). Start-up checks the database and the App's credentials."),
    "worker": ("the worker half only: run stored jobs (/healthz and /metrics on PORT)",
               "Run the jobs `web` processes stored in DATABASE_URL, BOT_CONCURRENCY at a time; answers "
               "GET /healthz and GET /metrics on PORT. It verifies no deliveries, so it needs no "
               "GITHUB_WEBHOOK_SECRET. Start-up checks the database and the App's credentials."),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="chantbot: research-first issue triage "
                                     "and chant's maintainer workflow on GitHub.", epilog=TOP_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (summary, description) in SERVER_HELP.items():
        server = sub.add_parser(name, help=summary, description=textwrap.fill(description, 100),
                                epilog=environment_help(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        _env_file_option(server)
    migrate = sub.add_parser("migrate", help="bring DATABASE_URL's schema up to date, or copy chantbot's state "
                             "from one database to another (--from, --to)",
                             description="Apply chantbot's schema migrations to DATABASE_URL (every process also "
                             "does this at start-up), or, with --from and --to, copy chantbot's durable state "
                             "into an empty database (e.g. from SQLite to PostgreSQL; stop chantbot first).")
    _env_file_option(migrate)
    migrate.add_argument("--from", dest="source", metavar="URL",
                         help="copy from this database (e.g. sqlite:///chantbot.db)")
    migrate.add_argument("--to", dest="target", metavar="URL", help="into this empty database (e.g. postgresql://…)")
    demo = sub.add_parser("demo", help="the offline showcase: the whole flow against the built-in GitHub simulator",
                          description="Run chantbot's whole flow on example issues against the built-in GitHub "
                          "simulator, offline: triage, questions, commands and the stages (Claude with "
                          "ANTHROPIC_API_KEY, else the local triager), printing what a maintainer would see.")
    demo.add_argument("--quiet", action="store_true", help="print only the summary of each case")
    demo.add_argument("--specs-out", metavar="DIR", help="copy the chant-specs branch's files into DIR at the end "
                      "(e.g. to check them with chant)")
    demo.add_argument("--example-out", metavar="PATH", help="fill the generated sections (<!-- demo:NAME --> … "
                      "<!-- /demo:NAME -->) of a Markdown page, or of every page in a folder, from this run, with "
                      "spec ids, commit SHAs and times fixed; a new file gets every section. `make guide` refreshes "
                      "docs/guides/oss-maintainer-workflow/ this way")
    from bot import tryout

    tryout.add_arguments(sub.add_parser(
        "try", help="chantbot on your own repository (a local clone) and an issue text, offline",
        description=tryout.DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter))
    evaluate = sub.add_parser("eval", help="measure a triager on labelled issues (precision, recall, F1)",
                              description="Measure a triager (the local one, or Claude with ANTHROPIC_API_KEY) on "
                              "labelled issues: precision, recall and F1 per category, the confusion matrix, "
                              "tokens and cost.")
    from bot import evaluate as evaluation

    evaluation.add_arguments(evaluate)
    from bot import register, receive

    register.add_arguments(sub.add_parser(
        "register", help="create the GitHub App from app.yaml (GitHub's manifest flow) and write its credentials",
        description=register.DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter))
    receive_parser = sub.add_parser(
        "receive", help="run one webhook delivery from a file through chantbot, printing what it did",
        description=receive.DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    receive.add_arguments(receive_parser)
    _env_file_option(receive_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("serve", "web", "worker"):
        settings = load_settings(read_environment(args.env_file), require_secret=args.command != "worker")
        setup_logging(settings.log_format)
        try:
            if args.command == "worker":
                asyncio.run(_worker(settings))
            else:
                asyncio.run(_serve(settings, with_workers=args.command == "serve"))
        except StartupError as exc:
            raise fail(str(exc)) from None
        return 0
    if args.command == "migrate":
        return asyncio.run(_migrate(args.source, args.target, read_environment(args.env_file)))
    if args.command == "demo":
        from bot import demo

        setup_logging("text")
        logging.getLogger().setLevel(logging.WARNING)
        return asyncio.run(demo.run(quiet=args.quiet, api_key=os.environ.get("ANTHROPIC_API_KEY"),
                                    specs_out=args.specs_out, example_out=args.example_out,
                                    sandbox=os.environ.get("CHANTBOT_SANDBOX")))
    if args.command == "try":
        from bot import tryout

        setup_logging("text")
        logging.getLogger().setLevel(logging.WARNING)
        try:
            return asyncio.run(tryout.run(args))
        except tryout.TryError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            print("chantbot: try interrupted; the simulated repository's final state was not written out",
                  file=sys.stderr)
            return 130
    if args.command == "register":
        from bot import register

        settings = load_settings(require_app=False)
        setup_logging("text")
        logging.getLogger().setLevel(logging.WARNING)
        try:
            return asyncio.run(register.run(args, settings))
        except register.RegisterError as exc:
            raise fail(str(exc)) from None
    if args.command == "receive":
        from bot import receive

        env = read_environment(args.env_file)
        settings = load_settings(env, require_secret=False)
        setup_logging(settings.log_format)
        logging.getLogger().setLevel(logging.WARNING)
        try:
            return asyncio.run(receive.run(args, settings,
                                           deployment_database=bool(env.get("DATABASE_URL", "").strip())))
        except receive.ReceiveError as exc:
            raise fail(str(exc)) from None
    from bot import evaluate as evaluation

    args.api_key = os.environ.get("ANTHROPIC_API_KEY")
    args.model = getattr(args, "model", None) or os.environ.get("BOT_MODEL")
    return asyncio.run(evaluation.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
