"""``pikabot quota show|grant|set|ledger GUILD_ID …``: headless administration of credits.

The operator's commands work on the SQLite file with the same core as ``/quota``
(:class:`~bot.moderation.Moderation`), so the same rules apply and the same ledger and audit
rows are written, with actor id 0 (the operator). The bot may be running meanwhile: every
change is one ``BEGIN IMMEDIATE`` transaction, serialised with the bot's own (a ``migrate-db``
copying the file refuses it, see :mod:`bot.storage.sqlite.lockfile`).

Exit codes: 0 done, 2 bad input (the message says what to fix), 1 anything else.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bot.audit_text import describe
from bot.config import Settings
from bot.guild_settings import OPERATOR_ID
from bot.moderation import Moderation, ModerationError, Overview
from bot.services import build_quotas, open_database

EXIT_OK = 0
EXIT_USAGE = 2


def add_parser(commands: Any) -> None:
    """Add ``quota`` and its subcommands to the CLI's subparsers."""
    quota = commands.add_parser("quota", help="show or change a server's credits (no Discord)")
    actions = quota.add_subparsers(dest="quota_command", required=True, metavar="ACTION")

    show = actions.add_parser("show", help="credits, period, spend and rules of a server")
    show.add_argument("guild_id", type=int, metavar="GUILD_ID")

    grant = actions.add_parser("grant", help="give a server extra credits this period")
    grant.add_argument("guild_id", type=int, metavar="GUILD_ID")
    grant.add_argument("amount", type=int)
    grant.add_argument("--reason", required=True, help="why (kept in the ledger)")

    change = actions.add_parser("set", help="change allowance, period, reset time or caps")
    change.add_argument("guild_id", type=int, metavar="GUILD_ID")
    change.add_argument("--allowance", type=int)
    change.add_argument("--period", choices=("daily", "weekly", "monthly"))
    change.add_argument("--reset-hour", type=int, dest="reset_hour")
    change.add_argument("--timezone", help="IANA name such as Europe/Berlin")
    change.add_argument("--rollover", choices=("on", "off"))
    change.add_argument("--usd-cap", dest="usd_cap", help="USD per month, or none")
    change.add_argument("--reason")

    ledger = actions.add_parser("ledger", help="every credit movement, newest first")
    ledger.add_argument("guild_id", type=int, metavar="GUILD_ID")
    ledger.add_argument("--page", type=int, default=1)
    ledger.add_argument("--per-page", type=int, default=20, dest="per_page")
    ledger.add_argument("--rules", action="store_true", help="rule changes instead of credits")


async def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run one ``pikabot quota`` action; print the result on stdout."""
    if args.guild_id <= 0:
        sys.stderr.write("pikabot: GUILD_ID must be a server's id (a positive number)\n")
        return EXIT_USAGE
    storage = await open_database(settings)
    try:
        moderation = Moderation(storage, build_quotas(settings))
        try:
            lines = await _action(moderation, args)
        except ModerationError as exc:
            sys.stderr.write(f"pikabot: nothing changed: {exc}\n")
            return EXIT_USAGE
    finally:
        await storage.close()
    sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_OK


async def _action(moderation: Moderation, args: argparse.Namespace) -> list[str]:
    guild = args.guild_id
    match args.quota_command:
        case "show":
            return _overview(await moderation.show(guild))
        case "grant":
            balance = await moderation.grant(guild, OPERATOR_ID, args.amount, args.reason)
            return [f"granted {args.amount} credits; {balance.remaining} left"]
        case "set":
            rollover = None if args.rollover is None else args.rollover == "on"
            overview = await moderation.set(
                guild,
                OPERATOR_ID,
                allowance=args.allowance,
                period=args.period,
                reset_hour=args.reset_hour,
                time_zone=args.timezone,
                rollover=rollover,
                usd_cap=args.usd_cap,
                reason=args.reason,
            )
            return ["saved", *_overview(overview)]
        case "ledger":
            if args.per_page < 1 or args.page < 1:
                raise ModerationError("--page and --per-page must be at least 1")
            if args.rules:
                audit = await moderation.audit(guild, args.page, args.per_page)
                out = []
                for e in audit.items:
                    change = describe(
                        e, role=lambda i: f"role {i}", channel=lambda i: f"channel {i}"
                    )
                    out.append(
                        f"#{e.id}\t{e.created_at.isoformat()}\tactor {e.actor_id}"
                        f"\t{change.subject}\t{change.old} -> {change.new}\t{e.reason or ''}"
                    )
                return [*out, f"page {audit.page} of {audit.pages} ({audit.total} entries)"]
            page = await moderation.ledger(guild, args.page, args.per_page)
            out = [
                f"#{e.id}\t{e.created_at.isoformat()}\t{e.period_key}\t{e.kind}\t{e.amount:+d}"
                f"\tuser {e.user_id if e.user_id is not None else '-'}"
                f"\tactor {e.actor_id if e.actor_id is not None else '-'}"
                f"\tjob {e.job_id if e.job_id is not None else '-'}\t{e.reason or ''}"
                for e in page.items
            ]
            return [*out, f"page {page.page} of {page.pages} ({page.total} entries)"]
    raise ModerationError(f"unknown action {args.quota_command!r}")


def _overview(overview: Overview) -> list[str]:
    b, p = overview.balance, overview.policy
    cap = f"${p.monthly_usd_cap:.2f}" if p.monthly_usd_cap is not None else "none"
    return [
        f"guild {b.guild_id}",
        f"remaining {b.remaining} of {b.allowance} ({b.period.value}, period {b.period_key})",
        f"reserved {b.reserved}  spent {b.spent}  granted {b.granted}  carried {b.carried}"
        f"  adjusted {b.adjusted}",
        f"resets {b.resets_at.isoformat()} (at {b.reset_hour:02d}:00 {b.time_zone});"
        f" rollover {'on' if b.rollover else 'off'}",
        f"provider spend this month ${overview.usd_this_month:.2f}; monthly USD cap {cap}",
        f"member cap {p.member_cap or 'none'}; cooldown {p.cooldown_seconds}s;"
        f" jobs at once {p.max_running or 'no limit'}",
        "channels "
        + (", ".join(str(c) for c in sorted(p.channels)) or "all")
        + f"; nsfw-only {'on' if p.nsfw_only else 'off'}; blocklist {len(p.blocklist)} entries",
    ]
