"""Operator commands: ``pikabot run | sync | generate | check | quota | migrate-db | backup``.

Every command reads the same settings; a missing or invalid one ends the command with a
single line naming it (exit code 2), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from bot import __version__, cli_quota
from bot.config import ProviderName, Settings, SettingsError, load_settings, unknown_variables
from bot.logs import configure_logging, debug_enabled

log = structlog.get_logger(__name__)

if TYPE_CHECKING:
    from bot.lease import TerminalLease
    from bot.models import GenerationRequest, Job
    from bot.services import Services
    from bot.tools import Tool

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
    generate.add_argument(
        "prompt", nargs="?", default=None, help="what the clip shows (optional for some tools)"
    )
    generate.add_argument("--aspect", default=None, help="16:9 (default), 9:16, 1:1, 4:5, ...")
    generate.add_argument("--duration", type=int, default=None, choices=(5, 10))
    generate.add_argument("--resolution", default=None, choices=("720p", "1080p"))
    generate.add_argument("--seed", type=int, default=None)
    generate.add_argument("--negative", default=None, help="negative prompt")
    generate.add_argument("--model", default=None, help="2.2 (default), 2.1 or 2-turbo")
    generate.add_argument("--out", type=Path, default=Path("pika.mp4"), help="output file")
    generate.add_argument(
        "--fit-discord",
        action="store_true",
        help="make the clip one Discord posts and plays inline (H.264 MP4, under the limit)",
    )
    generate.add_argument(
        "--limit-mb",
        type=_limit_mb,
        default=None,
        metavar="N",
        help="the upload limit to fit under, in MB as Discord counts them (default 10;"
        " implies --fit-discord)",
    )
    generate.add_argument(
        "--image",
        default=None,
        metavar="FILE_OR_URL",
        help="first frame (image-to-video): an https:// URL, or a PNG/JPEG/WebP file up to 10 MB;"
        " with --effect, --add-to or --swap-in the tool's image",
    )
    tools = generate.add_argument_group("Pika tools (where the provider sells them: fal)")
    one = tools.add_mutually_exclusive_group()
    one.add_argument("--effect", metavar="NAME", help="Pikaffects on --image: Melt, Squish, ...")
    one.add_argument(
        "--add-to", metavar="VIDEO", help="Pikadditions: add --image into VIDEO (file or URL)"
    )
    one.add_argument(
        "--swap-in", metavar="VIDEO", help="Pikaswaps: replace --region in VIDEO (file or URL)"
    )
    one.add_argument(
        "--frames", nargs="+", metavar="IMG", help="Pikaframes: 2 to 5 keyframes (files or URLs)"
    )
    tools.add_argument("--region", help="with --swap-in: what to replace, e.g. 'the red car'")
    tools.add_argument(
        "--transition",
        action="append",
        default=None,
        metavar="TEXT",
        help="with --frames: a prompt for the next transition (repeat, in order)",
    )
    tools.add_argument(
        "--durations", metavar="SECONDS", help="with --frames: each transition's seconds, '5 3'"
    )
    cli_quota.add_parser(commands)
    migrate = commands.add_parser(
        "migrate-db",
        help="copy the SQLite database into an empty PostgreSQL one (stop the bot first)",
    )
    migrate.add_argument(
        "--to", required=True, metavar="POSTGRESQL_URL", help="postgresql://user:pass@host/db"
    )
    backup = commands.add_parser(
        "backup", help="write a consistent copy of the SQLite database (safe while the bot runs)"
    )
    backup.add_argument(
        "path", type=Path, metavar="PATH", help="a new file, or a folder to write it into"
    )
    return parser


def _limit_mb(text: str) -> float:
    """``--limit-mb``: a size in Discord's MB (MiB), from 1 to 500."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of MB: {text!r}") from None
    if not 1 <= value <= 500:
        raise argparse.ArgumentTypeError("use a limit from 1 to 500 MB")
    return value


def _settings(*, need_discord: bool, need_provider: bool, quiet: bool = False) -> Settings:
    """Load the settings and set up logging; ``quiet``: WARNING unless PIKABOT_LOG_LEVEL is set."""
    settings = load_settings(need_discord=need_discord, need_provider=need_provider)
    level = settings.log_level
    if quiet and "log_level" not in settings.model_fields_set:
        level = "WARNING"  # generate's status line shows the job's progress
    configure_logging(level=level, fmt=settings.log_format, secrets=settings.secrets())
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
                settings = _settings(need_discord=False, need_provider=True, quiet=True)
                args.out = args.out.absolute()
                return asyncio.run(_generate(settings, args))
            case "quota":
                settings = _settings(need_discord=False, need_provider=False)
                return asyncio.run(cli_quota.run(settings, args))
            case "migrate-db":
                settings = _settings(need_discord=False, need_provider=False, quiet=True)
                return asyncio.run(_migrate_db(settings, args.to))
            case "backup":
                settings = _settings(need_discord=False, need_provider=False, quiet=True)
                return asyncio.run(_backup(settings, args.path.absolute()))
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


async def _migrate_db(settings: Settings, to: str) -> int:
    """Copy the configured SQLite database into the empty PostgreSQL one at ``to``; one line
    on stdout when done, one on stderr (never the password) when not."""
    from bot.redact import redact_text
    from bot.storage import SQLITE_SCHEME, StorageError
    from bot.storage.copy import CopyRefused, copy_sqlite_to_postgres, url_secrets

    secrets = [*settings.secrets(), *url_secrets(to)]
    configure_logging(level="WARNING", fmt=settings.log_format, secrets=secrets)
    if not settings.database_url.startswith(SQLITE_SCHEME + ":"):
        print(
            "pikabot: migrate-db copies a SQLite database, but PIKABOT_DATABASE_URL names"
            " another kind: unset it (or point it at the SQLite file) to copy that file",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        summary = await copy_sqlite_to_postgres(settings.database, to)
    except CopyRefused as refused:
        print(f"pikabot: nothing copied: {redact_text(str(refused), secrets)}", file=sys.stderr)
        return EXIT_USAGE
    except StorageError as failed:
        print(f"pikabot: migrate-db failed: {redact_text(str(failed), secrets)}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as failed:  # one line, never a traceback (nor the target's password)
        from bot.startup import describe

        log.debug("migrate_db.failed", exc_info=failed)
        text = describe(failed, debug=debug_enabled())
        print(f"pikabot: migrate-db failed: {redact_text(text, secrets)}", file=sys.stderr)
        return EXIT_FAILED
    print(f"pikabot: {summary.line()}")
    print(f"pikabot: now set PIKABOT_DATABASE_URL={summary.target} (with its password) and start")
    return EXIT_OK


async def _backup(settings: Settings, path: Path) -> int:
    """Copy the database to ``path`` while the bot may run; one line either way."""
    from bot.clock import utcnow
    from bot.redact import redact_text
    from bot.storage import BackupFailed, BackupUnsupported, backup_database

    try:
        made = await backup_database(settings.database_url, path, at=utcnow())
    except BackupUnsupported as other_tools:  # PostgreSQL: pg_dump
        print(f"pikabot: {redact_text(str(other_tools), settings.secrets())}", file=sys.stderr)
        return EXIT_USAGE
    except BackupFailed as failed:
        print(f"pikabot: nothing written: {failed}", file=sys.stderr)
        return EXIT_FAILED
    print(f"pikabot: {made.line()}")
    return EXIT_OK


STOPPED = "Stopped from the terminal (Ctrl-C)."
"""The reason a job stopped with Ctrl-C (or SIGTERM, SIGHUP) is recorded with."""


async def _generate(settings: Settings, args: argparse.Namespace) -> int:
    """Make one clip; Ctrl-C settles it as the provider allows, with one line, exit 130.

    Clips that an earlier ``generate`` left behind (it was killed) are finished alongside,
    headless, into the files they were started with; the command waits for them too.
    """
    from bot.jobs import RequestRefused
    from bot.lease import TerminalLease
    from bot.services import Services
    from bot.terminal import OUT, TerminalObserver

    out: Path = args.out  # made absolute in main(): a resumed job saves to it from anywhere
    # The interval spares Discord's edit limits; a terminal line can show every change.
    services = await Services.open(settings.model_copy(update={"status_edit_interval": 0.0}))
    lease: TerminalLease | None = None
    with _StopSignals() as stop:  # also over close(): a second Ctrl-C must not cut it short
        try:
            lease = TerminalLease.acquire(settings.data_dir)
            for leftover in await services.jobs.resume(None):
                print(
                    f"pikabot: also finishing job {leftover.id}, left by an earlier run"
                    f" (saved to {leftover.extra.get(OUT, 'nowhere')})",
                    file=sys.stderr,
                )
            try:
                job = await _create(services, settings, args, lease)
            except RequestRefused as refused:
                print(f"pikabot: {refused.user_message}", file=sys.stderr)
                return EXIT_USAGE
            print(
                f"pikabot: job {job.id} on {job.provider}: {job.cost} credits,"
                f" seed {job.request.seed}",
                file=sys.stderr,
            )
            key_settings = {name.value: settings.provider_key_name(name) for name in ProviderName}
            with TerminalObserver(out, key_settings=key_settings) as observer:
                task = services.jobs.start(job, observer)
                if await stop.first(task):
                    # Then the clips left by an earlier run, if they are still going.
                    idle = services.jobs.wait_idle(settings.job_deadline.total_seconds() + 60)
                    await stop.first(asyncio.ensure_future(idle))
                if stop.signal is not None:
                    observer.stop()
                    line = await _stopped(services, job.id)
                    with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
                        print(f"pikabot: {line}", file=sys.stderr)
                    return 128 + stop.signal
            return EXIT_FAILED if observer.error else EXIT_OK
        finally:
            await services.close()  # suspends what is still open: the next start carries it on
            if lease is not None:
                lease.release()


async def _create(
    services: Services, settings: Settings, args: argparse.Namespace, lease: TerminalLease
) -> Job:
    """Build the request from the command line and create the terminal job (or refuse)."""
    from bot.delivery import DEFAULT_UPLOAD_LIMIT, UPLOAD_LIMIT
    from bot.images import image_input
    from bot.jobs import TERMINAL_LEASE, RequestRefused
    from bot.models import Mode, Origin
    from bot.requests import RequestOptions, build_request
    from bot.terminal import OUT

    tool = _tool_of(args)
    if tool is not None:
        request = await _tool_request(services, settings, args, tool)
        extra = {TERMINAL_LEASE: lease.token, OUT: str(args.out)}
        return await services.jobs.create(request, Origin.terminal(), extra=extra)
    options = RequestOptions(
        prompt=args.prompt or "",
        negative_prompt=args.negative,
        aspect=args.aspect,
        duration=args.duration,
        resolution=args.resolution,
        seed=args.seed,
        model=args.model,
    )
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
    extra = {TERMINAL_LEASE: lease.token, OUT: str(args.out)}
    if args.fit_discord or args.limit_mb is not None:
        limit = DEFAULT_UPLOAD_LIMIT if args.limit_mb is None else int(args.limit_mb * 1024**2)
        extra[UPLOAD_LIMIT] = str(limit)
    return await services.jobs.create(request, Origin.terminal(), extra=extra)


def _tool_of(args: argparse.Namespace) -> Tool | None:
    """The Pika tool the flags ask for, if any."""
    from bot.tools import Tool

    if args.effect is not None:
        return Tool.PIKAFFECTS
    if args.add_to is not None:
        return Tool.PIKADDITIONS
    if args.swap_in is not None:
        return Tool.PIKASWAPS
    if args.frames is not None:
        return Tool.PIKAFRAMES
    return None


async def _tool_request(
    services: Services, settings: Settings, args: argparse.Namespace, tool: Tool
) -> GenerationRequest:
    """A Pika tool's request from the flags: the provider must sell it, local images are sent
    inline (where the provider takes data URIs), a video URL is probed by its first bytes."""
    from bot.images import image_input
    from bot.jobs import RequestRefused
    from bot.tool_requests import SourceVideo, ToolOptions, build_tool_request
    from bot.tools import Tool
    from bot.videos import check_remote_video, video_input

    provider = settings.provider.value
    capabilities = services.provider.capabilities
    if tool not in capabilities.tools:
        raise RequestRefused(
            f"PIKA_PROVIDER={provider} does not offer {tool.label}: use a provider that does (fal)."
        )
    unused = [
        flag
        for flag, value in (("--aspect", args.aspect), ("--duration", args.duration))
        if value is not None
    ]
    if args.model is not None:
        unused.append("--model")
    if args.resolution is not None and tool is not Tool.PIKAFRAMES:
        unused.append("--resolution")
    if args.region is not None and tool is not Tool.PIKASWAPS:
        unused.append("--region")
    if (args.transition or args.durations) and tool is not Tool.PIKAFRAMES:
        unused.append("--transition/--durations")
    if args.image is not None and tool is Tool.PIKAFRAMES:
        unused.append("--image (give the keyframes to --frames)")
    if unused:
        raise RequestRefused(f"{tool.label} has no {', '.join(unused)}: leave them out.")
    given = list(args.frames) if tool is Tool.PIKAFRAMES else [args.image] if args.image else []
    images = [
        image_input(value, data_uri_ok=capabilities.data_uri_images, provider=provider)
        for value in given
    ]
    video = None
    source = args.add_to if tool is Tool.PIKADDITIONS else args.swap_in
    if source is not None:
        found = video_input(source, data_uri_ok=capabilities.data_uri_images, provider=provider)
        if isinstance(found, str):
            video = SourceVideo(found, Path(source).name)
        else:
            video = SourceVideo(await check_remote_video(services.session, found), found.name)
    return build_tool_request(
        ToolOptions(
            tool,
            prompt=args.prompt,
            negative_prompt=args.negative,
            seed=args.seed,
            effect=args.effect,
            region=args.region,
            video=video,
            image_urls=tuple(images),
            image_names=tuple(Path(value.split("?", 1)[0]).name for value in given),
            transition_prompts=tuple(args.transition or ()),
            durations=args.durations,
            resolution=args.resolution,
        )
    )


async def _stopped(services: Services, job_id: int) -> str:
    """Settle the job after a stop signal; the one line that says what became of it."""
    from bot.models import JobState
    from bot.terminal import OUT

    # close() lets a submit in flight finish, then suspends every job. Clips an earlier run
    # left stay suspended: nobody asked to stop them, the next start carries them on again.
    await services.jobs.close()
    job = await services.jobs.settle_stopped(job_id, reason=STOPPED)
    assert job is not None
    if job.state is JobState.CANCELLED:
        where = f" at {job.provider}" if job.provider_handle else ""
        return f"stopped: job {job.id} was cancelled{where} and its {job.cost} credits refunded."
    if job.state.terminal:  # it ended; the wait was for clips an earlier run left
        return (
            f"stopped: job {job.id} had ended ({job.state.value}); clips left by an earlier"
            " run are finished at the next start."
        )
    made = job.state in (JobState.DOWNLOADING, JobState.FITTING, JobState.POSTING)
    billed = "has already made" if made else "still makes"
    return (
        f"stopped waiting: {job.provider} {billed} job {job.id} and bills it, so its"
        f" {job.cost} credits are charged; the next `pikabot generate` or `pikabot run`"
        f" saves it to {job.extra.get(OUT)}."
    )


class _StopSignals:
    """Ctrl-C, SIGTERM and SIGHUP become a flag the command reacts to, not an exception."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._event = asyncio.Event()
        self._installed: list[signal.Signals] = []

    def __enter__(self) -> _StopSignals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is None:
                continue
            try:
                loop.add_signal_handler(sig, self._received, sig)
            except (NotImplementedError, RuntimeError):  # not on this platform
                continue
            self._installed.append(sig)
        return self

    def __exit__(self, *exc_info: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)

    def _received(self, sig: signal.Signals) -> None:
        if self.signal is None:
            self.signal = int(sig)
        self._event.set()

    async def first(self, task: asyncio.Future[Any]) -> bool:
        """Wait for ``task`` or a stop signal; True when ``task`` ended first."""
        if self._event.is_set():
            return False
        waiter = asyncio.ensure_future(self._event.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        return task.done() and not self._event.is_set()


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
