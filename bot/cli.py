"""Operator commands: ``pikabot run | sync | generate | check | quota``.

Every command reads the same settings; a missing or invalid one ends the command with a
single line naming it (exit code 2), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import structlog

from bot import __version__, cli_quota
from bot.config import Settings, SettingsError, load_settings, unknown_variables
from bot.logs import configure_logging, debug_enabled

log = structlog.get_logger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pikabot", description="Pika text-to-video for Discord servers."
    )
    parser.add_argument("--version", action="version", version=f"pikabot {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="start the bot (needs DISCORD_TOKEN and the provider key)")
    commands.add_parser("sync", help="sync the slash commands with Discord now")
    commands.add_parser(
        "check", help="check the settings, the Discord token and the provider key, then exit"
    )

    generate = commands.add_parser("generate", help="make one clip from the terminal")
    generate.add_argument("prompt")
    generate.add_argument("--aspect", default=None, help="16:9 (default), 9:16, 1:1, 4:5, ...")
    generate.add_argument("--duration", type=int, default=None, choices=(5, 10))
    generate.add_argument("--resolution", default=None, choices=("720p", "1080p"))
    generate.add_argument("--seed", type=int, default=None)
    generate.add_argument("--negative", default=None, help="negative prompt")
    generate.add_argument("--model", default=None, help="2.2 (default), 2.1 or turbo")
    generate.add_argument("--out", type=Path, default=Path("pika.mp4"), help="output file")
    generate.add_argument(
        "--image",
        default=None,
        metavar="FILE_OR_URL",
        help="first frame (image-to-video): an https:// URL, or a PNG/JPEG/WebP file up to 10 MB",
    )
    cli_quota.add_parser(commands)
    return parser


def _settings(*, need_discord: bool, need_provider: bool) -> Settings:
    settings = load_settings(need_discord=need_discord, need_provider=need_provider)
    configure_logging(level=settings.log_level, fmt=settings.log_format, secrets=settings.secrets())
    for name, close in unknown_variables(os.environ):
        log.warning("settings.unknown_variable", variable=name, did_you_mean=close)
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pikabot`` console script."""
    args = _parser().parse_args(argv)
    settings: Settings | None = None
    try:
        match args.command:
            case "run":
                from bot.app import run_bot

                settings = _settings(need_discord=True, need_provider=True)
                asyncio.run(run_bot(settings))
                return EXIT_OK
            case "sync":
                from bot.app import sync_only

                settings = _settings(need_discord=True, need_provider=True)
                asyncio.run(sync_only(settings))
                return EXIT_OK
            case "generate":
                settings = _settings(need_discord=False, need_provider=True)
                return asyncio.run(_generate(settings, args))
            case "quota":
                settings = _settings(need_discord=False, need_provider=False)
                return asyncio.run(cli_quota.run(settings, args))
            case "check":
                import discord.http  # the CLI is part of the composition root

                settings = _settings(need_discord=True, need_provider=True)
                return asyncio.run(_check(settings, discord_api=discord.http.Route.BASE))
    except SettingsError as exc:
        print(f"pikabot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_FAILED
    except Exception as exc:  # the one place a start-up failure is turned into a sentence
        from bot.redact import redact_text
        from bot.startup import describe

        log.debug("startup.failed", exc_info=exc)
        debug = debug_enabled()
        secrets = settings.secrets() if settings is not None else []
        print(f"pikabot: {redact_text(describe(exc, debug=debug), secrets)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_USAGE


async def _generate(settings: Settings, args: argparse.Namespace) -> int:
    from bot.images import image_input
    from bot.jobs import RequestRefused
    from bot.models import Mode, Origin
    from bot.requests import RequestOptions, build_request
    from bot.services import Services
    from bot.terminal import TerminalObserver

    options = RequestOptions(
        prompt=args.prompt,
        negative_prompt=args.negative,
        aspect=args.aspect,
        duration=args.duration,
        resolution=args.resolution,
        seed=args.seed,
        model=args.model,
    )
    services = await Services.open(settings)
    try:
        try:
            if args.image is not None:
                if Mode.IMAGE not in services.provider.capabilities.modes:
                    raise RequestRefused(
                        f"PIKA_PROVIDER={settings.provider.value} cannot make image-to-video"
                        " clips: leave out --image, or use a provider that can."
                    )
                image = image_input(
                    args.image,
                    data_uri_ok=services.provider.capabilities.data_uri_images,
                    provider=settings.provider.value,
                )
                options = replace(options, mode=Mode.IMAGE, image_urls=(image,))
            request = build_request(options, default_model=settings.default_model)
            job = await services.jobs.create(request, Origin.terminal())
        except RequestRefused as refused:
            print(f"pikabot: {refused.user_message}", file=sys.stderr)
            return EXIT_USAGE
        observer = TerminalObserver(args.out)
        print(
            f"pikabot: job {job.id} on {job.provider}: {job.cost} credits, seed {request.seed}",
            file=sys.stderr,
        )
        await services.jobs.run(job, observer)
        return EXIT_FAILED if observer.error else EXIT_OK
    finally:
        await services.close()


async def _check(settings: Settings, *, discord_api: str) -> int:
    from bot.checks import run_checks

    results = await run_checks(settings, discord_api=discord_api)
    good, bad = _marks()
    for result in results:
        print(f"{good if result.ok else bad} {result.text}")
    return EXIT_OK if all(result.ok for result in results) else EXIT_FAILED


def _marks() -> tuple[str, str]:
    """✓ and ✗, or plain words where stdout cannot show them."""
    try:
        "✓✗".encode(sys.stdout.encoding or "ascii")
    except (LookupError, UnicodeEncodeError):
        return "ok  ", "FAIL"
    return "✓", "✗"
