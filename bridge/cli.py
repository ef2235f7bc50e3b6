"""Command-line entry points: run, demo, check-config, routes test, dlq, db upgrade."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bridge import config_checks
from bridge.settings import ConfigError, Settings, load_settings

EXIT_CONFIG = 2
EXIT_START = 1


def _fail(problems: Sequence[str]) -> int:
    print(f"oz-bridge: the configuration has {len(problems)} problem(s):", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return EXIT_CONFIG


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    return load_settings(getattr(args, "config", None), **overrides)


def _run_settings(args: argparse.Namespace) -> Settings:
    # The contract: without SLACK_BOT_TOKEN, Slack targets are disabled (check-config flags them).
    return load_settings(getattr(args, "config", None), allow_disabled=True)


def cmd_run(args: argparse.Namespace) -> int:
    from bridge.app import serve
    from bridge.logs import configure

    settings = _run_settings(args)
    if settings.oz.api_key is None:
        raise ConfigError(["WARP_API_KEY: required for run (the Oz API key)"])
    configure(settings.log_format, settings.log_level)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    try:
        asyncio.run(main())
    except OSError as exc:
        # A port already taken, or a database that refuses connections: the text says which.
        print(f"oz-bridge: cannot start: {exc}", file=sys.stderr)
        return EXIT_START
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        print(f"oz-bridge: cannot start: database error ({type(cause).__name__}: {cause})", file=sys.stderr)
        return EXIT_START
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.slack:
        from bridge.demo_slack import run_slack_demo

        return asyncio.run(run_slack_demo())
    from bridge.demo import run_demo

    return asyncio.run(run_demo(speed=args.speed))


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = _settings(args)
    print("configuration OK")
    print(f"  database: {_redacted_database(settings.database_url)}")
    poll = settings.poll
    print(f"  poll: every {poll.interval:g}s, sweep every {poll.sweep:g}s over {poll.lookback:g}s, start {poll.start}")
    for name, target in settings.targets.items():
        where = getattr(target, "channel", None) or getattr(target, "url", None) or "stdout"
        print(f"  target {name}: {target.type} → {_redacted_url(str(where))}")
    for route in settings.routes:
        print(f"  route {route.name}: {', '.join(route.events)} → {', '.join(route.to)}")
    reminders, budget = settings.reminders, settings.budgets.run_usd
    print(
        f"  reminders: blocked every {reminders.blocked_every:g}s, stuck after {reminders.stuck_after:g}s, "
        f"budget ${budget:g} per run (0 = off)"
    )
    for digest in settings.digests:
        when = f"{digest.cron} ({digest.timezone}), last {digest.window:g}s"
        print(f"  digest {digest.name}: {when} → {', '.join(digest.to)}")
    for warning in config_checks.warnings(settings):
        print(f"  warning: {warning}")
    return 0


def _redacted_database(url: str) -> str:
    # Credentials may sit in the user-info part or in the query string (?password=…).
    without_query = url.split("?", 1)[0]
    scheme, _, rest = without_query.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"


def _redacted_url(url: str) -> str:
    # Webhook URLs often carry a token in their path or query: show only where they go.
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    host = rest.split("/", 1)[0].split("@")[-1]
    return f"{scheme}://{host}/…" if "/" in rest.rstrip("/") else f"{scheme}://{host}"


def cmd_routes_test(args: argparse.Namespace) -> int:
    from bridge.route_preview import preview

    settings = _settings(args)
    run = _read_run(args.run) if args.run else None
    print(preview(settings, args.event, run))
    return 0


def _read_run(path: str) -> dict[str, Any]:
    try:
        run = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"--run: {path}: {exc.strerror}"]) from None
    except ValueError as exc:
        raise ConfigError([f"--run: {path}: not JSON ({exc})"]) from None
    if not isinstance(run, dict) or not isinstance(run.get("run_id"), str):
        raise ConfigError([f"--run: {path}: must be one run as a JSON object with a run_id (a RunItem)"])
    return run


def _with_store(action: Callable[..., Any]) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        from bridge.store.engine import create_engine, migrate

        settings = load_settings(getattr(args, "config", None), check=False)

        async def main() -> int:
            engine = create_engine(settings.database_url)
            try:
                await migrate(engine)
                result: int = await action(engine, args)
                return result
            finally:
                await engine.dispose()

        try:
            return asyncio.run(main())
        except (OSError, SQLAlchemyError) as exc:
            cause = getattr(exc, "orig", None) or exc
            print(f"oz-bridge: cannot reach the database: {type(cause).__name__}: {cause}", file=sys.stderr)
            return EXIT_START

    return command


async def _dlq_list(engine: Any, _args: argparse.Namespace) -> int:
    from bridge.store import outbox

    async with engine.connect() as conn:
        rows = await outbox.dead_letters(conn)
    if not rows:
        print("no dead letters")
        return 0
    print(f"{'ID':>6}  {'TARGET':<16} {'EVENT':<24} {'RUN':<38} {'TRIES':>5}  ERROR")
    for row in rows:
        print(
            f"{row.id:>6}  {row.target:<16} {row.event_type:<24} {row.run_id:<38} {row.attempts:>5}  "
            f"{row.last_error or ''}"
        )
    return 0


async def _dlq_retry(engine: Any, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from bridge.store import outbox

    async with engine.begin() as conn:
        known = {row.id for row in await outbox.dead_letters(conn)}
        count = await outbox.requeue_dead(conn, args.ids or None, datetime.now(UTC))
    print(f"requeued {count} dead letter(s); a running bridge delivers them within seconds")
    missing = sorted(set(args.ids) - known)
    if missing:
        print(f"oz-bridge: no dead letter with id {', '.join(map(str, missing))}", file=sys.stderr)
        return EXIT_START
    return 0


async def _db_upgrade(engine: Any, _args: argparse.Namespace) -> int:
    from bridge.store.engine import current_revision

    print(f"database at revision {await current_revision(engine)}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="oz-bridge", description="Oz cloud agent runs → Slack and webhooks.")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(func=func)
        return sub

    def with_config(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument(
            "--config", metavar="PATH", help="YAML config (default: $OZ_BRIDGE_CONFIG or config/bridge.yaml)"
        )
        return sub

    with_config(command("run", cmd_run, "run the service until SIGTERM/SIGINT"))
    demo = command("demo", cmd_demo, "play a scripted scenario against the built-in Oz simulator")
    demo.add_argument("--speed", type=float, default=1.0, help="scenario speed factor (2 = twice as fast)")
    demo.add_argument(
        "--slack", action="store_true", help="start and steer a run from Slack, against a built-in Slack stand-in"
    )
    with_config(command("check-config", cmd_check_config, "validate settings and routes, offline"))

    routes = commands.add_parser("routes", help="inspect routing").add_subparsers(dest="routes_command", required=True)
    test = routes.add_parser("test", help="show where an event would go and what each target would get")
    test.set_defaults(func=cmd_routes_test)
    test.add_argument("--event", required=True, metavar="TYPE", help="event type, e.g. run.failed")
    test.add_argument("--run", metavar="FILE.json", help="a RunItem as JSON (default: a sample run)")
    with_config(test)

    dlq = commands.add_parser("dlq", help="dead-lettered deliveries").add_subparsers(dest="dlq_command", required=True)
    with_config(dlq.add_parser("list", help="show dead letters")).set_defaults(func=_with_store(_dlq_list))
    retry = with_config(dlq.add_parser("retry", help="requeue dead letters (all when no ID is given)"))
    retry.add_argument("ids", nargs="*", type=int, metavar="ID")
    retry.set_defaults(func=_with_store(_dlq_retry))

    db = commands.add_parser("db", help="database").add_subparsers(dest="db_command", required=True)
    with_config(db.add_parser("upgrade", help="apply migrations")).set_defaults(func=_with_store(_db_upgrade))
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        return _fail(exc.problems)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
