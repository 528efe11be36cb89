"""An audit row in the moderator's terms: ``monthly USD cap: none → $12.50``, not the column.

Audit rows keep the stored form (column names, USD in millionths, raw ids), which is what the
database and any later tooling can rely on; this module turns each one into what the
moderator set, for ``/quota ledger entries:rules`` and ``pikabot quota ledger --rules`` alike.
Roles and channels are written by the caller's ``role`` and ``channel`` functions: mentions
in Discord, plain ids in the terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import InvalidOperation

from bot.guild_settings import AuditEntry, micros_to_usd

Name = Callable[[int], str]


@dataclass(frozen=True, slots=True)
class Change:
    """One audit row, readable: what changed (``subject``), from what, to what."""

    subject: str
    old: str
    new: str

    def line(self, arrow: str = "→") -> str:
        """``subject: old → new``."""
        return f"{self.subject}: {self.old} {arrow} {self.new}"


def _number(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _credits(value: str | None) -> str:
    return "no cap" if value is None else f"{value} credits"


def _usd(value: str | None) -> str:
    if value is None:
        return "no cap"
    try:
        return f"${micros_to_usd(int(value)):,.2f}"
    except (ValueError, InvalidOperation):
        return value


def _on_off(value: str | None) -> str:
    return {"1": "on", "0": "off", "on": "on", "off": "off"}.get(str(value), str(value))


def _hour(value: str | None) -> str:
    number = _number(value or "")
    return f"{number:02d}:00" if number is not None else str(value)


def _seconds(value: str | None) -> str:
    number = _number(value or "")
    if number is None:
        return str(value)
    return "none" if number == 0 else f"{number} s"


def _reruns(value: str | None) -> str:
    return {"anyone": "anyone", "requester": "each video's requester"}.get(str(value), str(value))


def _role_rule(value: str | None) -> str:
    if value is None:
        return "no rule"
    if value == "exempt":
        return "no member limits"
    if value.startswith("cap "):
        return f"cap {value.removeprefix('cap ')} credits"
    return value


def describe(entry: AuditEntry, *, role: Name, channel: Name) -> Change:
    """``entry`` in the moderator's terms; an action this version does not know is shown as
    stored, so nothing is ever hidden."""
    action, old, new = entry.action, entry.old_value, entry.new_value

    def text(value: str | None, empty: str = "none") -> str:
        return empty if value is None else value

    def role_or(value: str | None, empty: str) -> str:
        number = _number(value or "")
        return role(number) if number is not None else text(value, empty)

    columns: dict[str, tuple[str, Callable[[str | None], str]]] = {
        "allowance": ("allowance", lambda v: f"{text(v)} credits"),
        "period": ("period", text),
        "time_zone": ("time zone", lambda v: text(v, "the bot's default")),
        "reset_hour": ("reset time", _hour),
        "rollover": ("rollover", _on_off),
        "member_cap": ("member cap", _credits),
        "cooldown_seconds": ("cooldown", _seconds),
        "max_running": ("jobs at once per member", lambda v: text(v, "no limit")),
        "required_role_id": ("role needed for /pika", lambda v: role_or(v, "anyone")),
        "nsfw_only": ("only in age-restricted channels", _on_off),
        "reruns_by": ("reruns by", _reruns),
        "monthly_usd_cap_micros": ("monthly USD cap", _usd),
    }
    if action.startswith("set "):
        column = action.removeprefix("set ")
        if column in columns:
            subject, show = columns[column]
            return Change(subject, show(old), show(new))
    if action in ("allow channel", "disallow channel"):
        number = _number(new or old or "")
        where = channel(number) if number is not None else text(new or old)
        if action == "allow channel":
            return Change("channels", "—", f"{where} allowed")
        return Change("channels", f"{where} allowed", "removed")
    if action == "clear channels":
        ids = [_number(part) for part in (old or "").split(",") if part]
        shown = ", ".join(channel(i) if i is not None else "?" for i in ids) or "none"
        return Change("channels", shown, "all channels")
    if action in ("block", "unblock"):
        entry_text = f"`{text(new or old)}`"
        if action == "block":
            return Change("blocklist", "—", f"{entry_text} added")
        return Change("blocklist", entry_text, "removed")
    if action in ("disable effect", "enable effect"):
        name = text(new or old)
        if action == "disable effect":
            return Change(f"Pikaffect {name}", "on", "off")
        return Change(f"Pikaffect {name}", "off", "on")
    if action.startswith("role "):
        number = _number(action.removeprefix("role "))
        if number is not None:
            return Change(f"rule for {role(number)}", _role_rule(old), _role_rule(new))
    return Change(action, text(old, "—"), text(new, "—"))
