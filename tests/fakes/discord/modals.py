"""Modals in the Discord double: checking the bot's modal (callback type 9) the way Discord's
API v10 does, and building the member's submission (INTERACTION type 5) from it.

A modal holds 1-5 top-level components: a Label (type 18: ``label`` 1-45 characters, an
optional ``description`` up to 100, and one ``component``: a text input (4), a string select
(3) or a file upload (19)), a text display (10), or, deprecated but accepted, an action row
(1) holding one text input with its own ``label``. The submission mirrors that layout with
each input's ``value`` (text) or ``values`` (select options, attachment ids), and the
uploaded files in ``data.resolved.attachments``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

TITLE_MAX = 45
CUSTOM_ID_MAX = 100
LABEL_MAX = 45
DESCRIPTION_MAX = 100
TEXT_MAX = 4000
COMPONENTS_MAX = 5
FILES_MAX = 10


class ModalError(ValueError):
    """The modal is not one Discord would accept: ``errors`` names the fields, as Discord's
    50035 "Invalid Form Body" does."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Input:
    """One input of a modal: where it sits, its definition, and its kind (4, 3 or 19)."""

    path: str
    definition: dict[str, Any]

    @property
    def kind(self) -> int:
        return int(self.definition.get("type", 0))

    @property
    def custom_id(self) -> str:
        return str(self.definition.get("custom_id", ""))


def check_modal(data: dict[str, Any]) -> None:
    """Raise :class:`ModalError` for a modal Discord would refuse."""
    errors: dict[str, str] = {}
    title = data.get("title")
    if not isinstance(title, str) or not 1 <= len(title) <= TITLE_MAX:
        errors["data.title"] = f"must be 1-{TITLE_MAX} characters"
    _check_custom_id(data.get("custom_id"), "data.custom_id", errors)
    components = data.get("components")
    if not isinstance(components, list) or not 1 <= len(components) <= COMPONENTS_MAX:
        errors["data.components"] = f"must hold 1-{COMPONENTS_MAX} components"
        raise ModalError(errors)
    seen: set[str] = set()
    for index, component in enumerate(components):
        where = f"data.components.{index}"
        kind = component.get("type") if isinstance(component, dict) else None
        if kind == 18:
            label = component.get("label")
            if not isinstance(label, str) or not 1 <= len(label) <= LABEL_MAX:
                errors[f"{where}.label"] = f"must be 1-{LABEL_MAX} characters"
            description = component.get("description")
            if description is not None and len(str(description)) > DESCRIPTION_MAX:
                errors[f"{where}.description"] = f"must be at most {DESCRIPTION_MAX} characters"
            child = component.get("component")
            if not isinstance(child, dict) or child.get("type") not in (3, 4, 19):
                errors[f"{where}.component"] = "a label holds a text input, select or file upload"
            else:
                _check_input(child, f"{where}.component", errors, seen, in_label=True)
        elif kind == 1:
            children = component.get("components")
            if not isinstance(children, list) or len(children) != 1:
                errors[f"{where}.components"] = "an action row in a modal holds one text input"
                continue
            child = children[0]
            if not isinstance(child, dict) or child.get("type") != 4:
                errors[f"{where}.components.0"] = "an action row in a modal holds a text input"
                continue
            _check_input(child, f"{where}.components.0", errors, seen, in_label=False)
        elif kind != 10:
            errors[f"{where}.type"] = "not a component a modal can hold"
    if errors:
        raise ModalError(errors)


def _check_custom_id(value: object, where: str, errors: dict[str, str]) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= CUSTOM_ID_MAX:
        errors[where] = f"custom_id must be 1-{CUSTOM_ID_MAX} characters"


def _check_input(
    child: dict[str, Any], where: str, errors: dict[str, str], seen: set[str], *, in_label: bool
) -> None:
    _check_custom_id(child.get("custom_id"), f"{where}.custom_id", errors)
    custom_id = str(child.get("custom_id"))
    if custom_id in seen:
        errors[f"{where}.custom_id"] = "custom_ids must be unique in a modal"
    seen.add(custom_id)
    kind = child.get("type")
    if kind == 4:
        if child.get("style") not in (1, 2):
            errors[f"{where}.style"] = "must be 1 (short) or 2 (paragraph)"
        label = child.get("label")
        if in_label and label is not None:  # the Label's own text is the label now
            errors[f"{where}.label"] = "a text input inside a label takes no label of its own"
        if not in_label and (not isinstance(label, str) or not 1 <= len(label) <= LABEL_MAX):
            errors[f"{where}.label"] = f"must be 1-{LABEL_MAX} characters"
        low, high = child.get("min_length", 0), child.get("max_length", TEXT_MAX)
        if not (0 <= int(low) <= TEXT_MAX and 1 <= int(high) <= TEXT_MAX and low <= high):
            errors[f"{where}.min_length"] = f"lengths must be within 0-{TEXT_MAX}"
    elif kind == 19:
        low, high = child.get("min_values", 1), child.get("max_values", 1)
        if low is None:
            low = 1
        if high is None:
            high = 1
        if not (0 <= int(low) <= FILES_MAX and 1 <= int(high) <= FILES_MAX and low <= high):
            errors[f"{where}.min_values"] = f"file counts must be within 0-{FILES_MAX}"


def inputs(data: dict[str, Any]) -> Iterator[Input]:
    """Every input of a (checked) modal, in order."""
    for index, component in enumerate(data.get("components", [])):
        if component.get("type") == 18:
            yield Input(f"{index}", component["component"])
        elif component.get("type") == 1:
            yield Input(f"{index}", component["components"][0])


def submission(
    data: dict[str, Any],
    values: dict[str, Any],
    store_upload: Callable[[Any], dict[str, Any]],
    *,
    strict: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The ``components`` and ``resolved`` of a member's submission of modal ``data``.

    ``values`` maps an input's ``custom_id`` to what the member entered: text for a text
    input, a list of option values for a select, and uploads for a file upload (each made an
    attachment by ``store_upload``). With ``strict``, as Discord's client does, unknown ids
    are refused and required inputs, lengths and file counts are enforced.
    """
    known = {i.custom_id: i for i in inputs(data)}
    unknown = sorted(set(values) - set(known))
    if unknown and strict:
        raise LookupError(f"the modal has no input {unknown} (has {sorted(known)})")
    attachments: dict[str, dict[str, Any]] = {}
    submitted: dict[str, dict[str, Any]] = {}
    next_id = iter(range(1, 1000))
    for custom_id, item in known.items():
        given = values.get(custom_id)
        definition = item.definition
        if item.kind == 4:
            text = "" if given is None else str(given)
            required = definition.get("required", True)
            low = int(definition.get("min_length") or 0)
            high = int(definition.get("max_length") or TEXT_MAX)
            if strict and required and not text:
                raise ValueError(f"the modal's {custom_id!r} is required")
            if strict and text and not low <= len(text) <= high:
                raise ValueError(f"{custom_id!r} must be {low}-{high} characters")
            submitted[custom_id] = {
                "type": 4,
                "id": next(next_id),
                "custom_id": custom_id,
                "value": text,
            }
        elif item.kind == 19:
            uploads = [] if given is None else given if isinstance(given, list) else [given]
            low = definition.get("min_values")
            high = definition.get("max_values")
            low = 1 if low is None else int(low)
            high = 1 if high is None else int(high)
            required = definition.get("required", True)
            if strict and (required or uploads) and not low <= len(uploads) <= high:
                raise ValueError(f"{custom_id!r} takes {low}-{high} files")
            ids = []
            for upload in uploads:
                attachment = store_upload(upload)
                attachments[attachment["id"]] = attachment
                ids.append(attachment["id"])
            submitted[custom_id] = {
                "type": 19,
                "id": next(next_id),
                "custom_id": custom_id,
                "values": ids,
            }
        else:
            chosen = [] if given is None else [str(v) for v in given]
            submitted[custom_id] = {
                "type": 3,
                "id": next(next_id),
                "custom_id": custom_id,
                "values": chosen,
            }
    components: list[dict[str, Any]] = []
    for component in data.get("components", []):
        if component.get("type") == 18:
            child = submitted[component["component"]["custom_id"]]
            components.append({"type": 18, "id": next(next_id), "component": child})
        elif component.get("type") == 1:
            child = submitted[component["components"][0]["custom_id"]]
            components.append({"type": 1, "id": next(next_id), "components": [child]})
    resolved = {"attachments": attachments} if attachments else {}
    return components, resolved
