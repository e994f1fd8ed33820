"""The ``roomwatch`` command line: parses arguments, loads the config once, dispatches.

Errors surface here once: one line on stderr and a non-zero exit (2 for a bad setting or usage,
1 for everything else).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import msgspec

from agent import backup_cli, import_cli, login_cli, watch_cli
from agent.crawl_cli import crawl_command
from agent.runtime import database_label, migrate, run_agent
from control_api.auth import load_or_create_token
from roomwatch.catalog import SPIDERS
from roomwatch.config import Config, load_config
from roomwatch.errors import ConfigError, RoomwatchError
from roomwatch.logs import setup_logging
from storage.database import connect, open_database
from storage.status import StatusReport, read_status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roomwatch",
        description="Keeps a durable, multi-source record of the broadcasters that matter to you.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="run the agent: database, migrations, scheduler, crawls, API")
    commands.add_parser("migrate", help="apply pending migrations and exit")
    status = commands.add_parser("status", help="last job per spider, sessions, row counts")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    crawl = commands.add_parser("crawl", help="run one crawl now as a recorded job")
    crawl.add_argument(
        "spider", choices=sorted(SPIDERS), metavar="SPIDER", help=f"one of: {', '.join(SPIDERS)}"
    )
    crawl.add_argument(
        "-a",
        dest="args",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="spider argument (repeatable)",
    )
    crawl.add_argument(
        "--account",
        metavar="NAME",
        help=(
            "the account whose lists a logged-in crawl, or whose Events or Stats URL a stream, "
            "reads (the same as -a account=NAME)"
        ),
    )
    commands.add_parser("token", help="print the API token")
    deploy = commands.add_parser(
        "deploy", help="build the project's egg and upload it to every node of scrapyd.urls"
    )
    deploy.add_argument(
        "--build-egg", metavar="FILE", help="only write the egg to FILE (no node needed)"
    )
    login_cli.add_parsers(commands)
    import_cli.add_parsers(commands)
    watch_cli.add_parsers(commands)
    backup_cli.add_parsers(commands)
    commands.add_parser(
        "demo", help="simulator + agent + a demo session + every crawl once + API, for a first look"
    )
    simulate = commands.add_parser("simulate", help="run the upstream simulator alone")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=8788)
    simulate.add_argument("--rooms", type=int, default=10_000, help="rooms in the affiliate feed")
    return parser


def _status(config: Config, as_json: bool) -> None:
    with open_database(config) as conninfo, connect(conninfo) as conn:
        report = read_status(conn, database_label(config), config)
    if as_json:
        print(msgspec.json.format(msgspec.json.encode(report).decode()))
    else:
        print(_format_status(report))


def _format_status(report: StatusReport) -> str:
    lines = [f"database: {report.database}"]
    if report.pending_migrations:
        lines.append(
            f"pending migrations: {', '.join(report.pending_migrations)} (roomwatch migrate)"
        )
        return "\n".join(lines)
    lines += [f"ALERT: {alert.message}" for alert in report.alerts]
    if report.scheduler is not None:
        state = report.scheduler
        lines.append(f"scheduler: {state.holder}" if state.active else "scheduler: no agent")
        for s in state.schedules:
            every = "keep running" if s.keep_running else s.cron or f"every {s.interval_seconds} s"
            plan = f"next {s.next_run_at:%Y-%m-%d %H:%M:%S}" if s.next_run_at else "not planned"
            plan = "paused" if s.paused else f"held: {s.held}" if s.held else plan
            lines.append(f"  {s.name:<18} {s.spider:<18} {every:<18} {plan}")
    lines.append("last jobs:" if report.last_jobs else "last jobs: none yet")
    for job in report.last_jobs:
        when = job.finished_at or job.started_at or job.queued_at
        reason = f" ({job.error_message})" if job.error_message else ""
        lines.append(f"  {job.spider:<18} #{job.job_id} {job.status} {when:%Y-%m-%d %H:%M}{reason}")
    sessions = ", ".join(f"{n} {s}" for s, n in sorted(report.sessions.items())) or "none"
    lines.append(f"sessions: {sessions}")
    lines.append("counts: " + ", ".join(f"{k}={v}" for k, v in report.counts.items()))
    return "\n".join(lines)


def _simulate(host: str, port: int, rooms: int) -> None:
    from upstream_sim.server import serve
    from upstream_sim.state import SimulatorState

    state = SimulatorState()
    state.affiliate.reset(count=rooms, seed=1)
    print(f"upstream simulator on http://{host}:{port}", flush=True)
    serve(host, port, state)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    try:
        config = load_config()
        setup_logging(config.log_level)
        if args.command == "run":
            run_agent(config)
        elif args.command == "migrate":
            with open_database(config) as conninfo:
                applied = migrate(conninfo, config)
            print("applied: " + ", ".join(applied) if applied else "database is up to date")
        elif args.command == "status":
            _status(config, args.json)
        elif args.command == "crawl":
            pairs = [*args.args, *([f"account={args.account}"] if args.account else [])]
            return crawl_command(config, args.spider, pairs)
        elif args.command == "deploy":
            from agent.deploy import deploy_command

            return deploy_command(config, args.build_egg)
        elif args.command == "token":
            print(load_or_create_token(config))
        elif args.command in login_cli.COMMANDS:
            return login_cli.handle(args, config)
        elif args.command in import_cli.COMMANDS:
            return import_cli.handle(args, config)
        elif args.command in watch_cli.COMMANDS:
            return watch_cli.handle(args, config)
        elif args.command in backup_cli.COMMANDS:
            return backup_cli.handle(args, config)
        elif args.command == "demo":
            from agent.demo import run_demo  # the simulator is loaded only when asked for

            run_demo(config)
        elif args.command == "simulate":
            _simulate(args.host, args.port, args.rooms)
    except ConfigError as exc:
        print(f"roomwatch: {exc}", file=sys.stderr)
        return 2
    except RoomwatchError as exc:
        print(f"roomwatch: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
