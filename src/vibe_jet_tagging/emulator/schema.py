"""Answers shaped by a JSON schema (``response_format`` ``json_schema``), like guided decoding.

:func:`instance_for_schema` builds a value that validates against the schema and carries the
decision: enums take the member matching the label (``"quark"``/``"gluon"``), bounded numbers
and probability-named numbers the quark probability, integers 1/0 (quark/gluon), booleans
True for quark (inverted when the property name mentions the gluon), other strings a label or
a short remark. Values that carry the decision are wrapped in :class:`Decisive` so the text
writer can find their tokens (for logprobs). A schema no value can satisfy raises
:class:`SchemaError` (the server answers 400).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import jsonschema

__all__ = [
    "Decisive",
    "SchemaError",
    "answer_for_schema",
    "dump_json",
    "instance_for_schema",
    "plain",
]

_LABELS = {True: "quark", False: "gluon"}
_MAX_DEPTH = 32


class SchemaError(ValueError):
    """The schema is malformed or no value can satisfy it."""


@dataclass(frozen=True)
class Decisive:
    """A JSON scalar that states the decision, with the value the other label would give."""

    value: Any
    alternative: Any


def plain(value: Any) -> Any:
    """``value`` with every :class:`Decisive` replaced by its value."""
    if isinstance(value, Decisive):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def dump_json(value: Any, *, compact: bool = False) -> tuple[str, list[tuple[int, int, str]]]:
    """Serialize like ``json.dumps``; also return the character spans of decisive scalars.

    Each span is ``(start, end, alternative_text)``; for strings the span excludes the quotes.
    ``compact`` leaves out all whitespace (``separators=(",", ":")``).
    """
    comma, colon = (",", ":") if compact else (", ", ": ")
    out: list[str] = []
    spans: list[tuple[int, int, str]] = []
    size = 0

    def emit(text: str) -> None:
        nonlocal size
        out.append(text)
        size += len(text)

    def walk(v: Any) -> None:
        if isinstance(v, Decisive):
            text = json.dumps(v.value)
            alt = json.dumps(v.alternative)
            quoted = isinstance(v.value, str)
            start = size + (1 if quoted else 0)
            end = size + len(text) - (1 if quoted else 0)
            spans.append((start, end, alt[1:-1] if isinstance(v.alternative, str) else alt))
            emit(text)
        elif isinstance(v, dict):
            emit("{")
            for i, (k, item) in enumerate(v.items()):
                emit(("" if i == 0 else comma) + json.dumps(k) + colon)
                walk(item)
            emit("}")
        elif isinstance(v, list):
            emit("[")
            for i, item in enumerate(v):
                emit("" if i == 0 else comma)
                walk(item)
            emit("]")
        else:
            emit(json.dumps(v))

    walk(value)
    return "".join(out), spans


def _resolve(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema:
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise SchemaError(f"unsupported $ref {ref!r}: only local references (#/...) work")
        target: Any = root
        for part in ref.lstrip("#").strip("/").split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                raise SchemaError(f"$ref {ref!r} points nowhere")
            target = target[part]
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **rest} if rest else target
        seen += 1
        if seen > _MAX_DEPTH:
            raise SchemaError(f"$ref {ref!r} loops")
    if schema is True or schema == {}:
        return {}
    if not isinstance(schema, dict):
        raise SchemaError(f"a schema must be an object, got {type(schema).__name__}")
    return schema


def _label_like(name: str) -> bool:
    return any(w in name for w in ("label", "class", "answer", "predict", "jet_type", "type"))


def _number(
    schema: dict[str, Any],
    name: str,
    is_quark: bool,
    p: float,
    integer: bool,
    multiplicity: int | None,
) -> Any:
    lo = schema.get("minimum", -math.inf)
    hi = schema.get("maximum", math.inf)
    xlo = schema.get("exclusiveMinimum")
    xhi = schema.get("exclusiveMaximum")
    if not all(isinstance(b, int | float) for b in (lo, hi)):
        raise SchemaError(f"property {name!r}: minimum/maximum must be numbers")
    gluon_named = "gluon" in name
    counted = multiplicity is not None and ("multiplicit" in name or "constituent" in name)
    want: float
    alt: float
    if integer and counted:
        want = float(multiplicity or 0)
        alt = want
    elif integer:
        want = int(is_quark != gluon_named)
        alt = 1 - want
    else:
        prob = 1 - p if gluon_named else p
        if "confidence" in name or "certainty" in name:
            prob = max(p, 1 - p)
        want, alt = round(prob, 2), round(1 - prob, 2)
        if counted:
            want = alt = float(multiplicity)  # type: ignore[arg-type]
        if not counted and hi != math.inf and lo != -math.inf and (lo, hi) != (0, 1):
            want = lo + (hi - lo) * want
            alt = lo + (hi - lo) * alt
    eps = 1 if integer else 1e-6
    lower = max(lo, xlo + eps if isinstance(xlo, int | float) else -math.inf)
    upper = min(hi, xhi - eps if isinstance(xhi, int | float) else math.inf)
    if integer:
        lower = math.ceil(lower) if math.isfinite(lower) else lower
        upper = math.floor(upper) if math.isfinite(upper) else upper
    if lower > upper:
        raise SchemaError(f"property {name!r}: no number satisfies its bounds")
    want = min(max(want, lower), upper)
    alt = min(max(alt, lower), upper)
    if integer:
        return Decisive(int(want), int(alt)) if want != alt else int(want)
    return float(want)


def _string(schema: dict[str, Any], name: str, is_quark: bool) -> Any:
    lo = schema.get("minLength", 0)
    hi = schema.get("maxLength", 10**6)
    pattern = schema.get("pattern")
    if lo > hi:
        raise SchemaError(f"property {name!r}: minLength > maxLength")
    label, other = _LABELS[is_quark], _LABELS[not is_quark]
    remark = (
        "Few constituents in a narrow core: quark-like."
        if is_quark
        else "Many constituents spread wide: gluon-like."
    )
    if _label_like(name) or not name:
        candidates: list[tuple[str, str | None]] = [(label, other), (label[0], other[0])]
        candidates += [(str(int(is_quark)), str(int(not is_quark))), (remark, None)]
    else:
        candidates = [(remark, None), (label, other), (label[0], other[0])]
    for text, alt in candidates:
        if len(text) < lo:
            text = text + "." * (lo - len(text))
            alt = None
        text = text[:hi]
        if alt is not None and alt[:hi] != alt:
            alt = None
        try:
            if pattern is not None and not re.search(pattern, text):
                continue
        except re.error as exc:
            raise SchemaError(f"property {name!r}: bad pattern {pattern!r}: {exc}") from None
        return Decisive(text, alt) if alt is not None else text
    raise SchemaError(f"property {name!r}: no string matches its pattern {pattern!r}")


def _enum(members: list[Any], name: str, is_quark: bool) -> Any:
    if not members:
        raise SchemaError(f"property {name!r}: empty enum")

    def match(want: bool) -> Any:
        label = _LABELS[want]
        for m in members:
            if isinstance(m, str) and (label in m.lower() or m.lower() == label[0]):
                return m
        for m in members:
            if isinstance(m, bool) and m == (want != ("gluon" in name)):
                return m
        for m in members:
            if (
                not isinstance(m, bool)
                and isinstance(m, int)
                and m == int(want != ("gluon" in name))
            ):
                return m
        return None

    chosen, alt = match(is_quark), match(not is_quark)
    if chosen is None:
        return members[0]
    return Decisive(chosen, alt) if alt is not None and alt != chosen else chosen


def instance_for_schema(
    schema: Any,
    *,
    is_quark: bool,
    quark_probability: float,
    multiplicity: int | None = None,
    name: str = "",
    root: dict[str, Any] | None = None,
    depth: int = 0,
) -> Any:
    """A value valid under ``schema`` that states the decision (see the module doc)."""
    root = root if root is not None else schema if isinstance(schema, dict) else {}
    if depth > _MAX_DEPTH:
        raise SchemaError("schema nests too deep")
    s = _resolve(schema, root)
    sub: dict[str, Any] = {
        "is_quark": is_quark,
        "quark_probability": quark_probability,
        "multiplicity": multiplicity,
        "root": root,
        "depth": depth + 1,
    }
    if "const" in s:
        return s["const"]
    if "enum" in s:
        return _enum(list(s["enum"]), name, is_quark)
    for key in ("anyOf", "oneOf"):
        if key in s:
            options = s[key]
            if not isinstance(options, list) or not options:
                raise SchemaError(f"{key} must be a non-empty list")
            # Prefer a non-null option (Optional[...] fields).
            ordered = sorted(options, key=lambda o: _resolve(o, root).get("type") == "null")
            errors = []
            for option in ordered:
                try:
                    return instance_for_schema(option, name=name, **sub)
                except SchemaError as exc:
                    errors.append(str(exc))
            raise SchemaError(f"no option of {key} can be satisfied: {'; '.join(errors)}")
    if "allOf" in s:
        merged: dict[str, Any] = {k: v for k, v in s.items() if k != "allOf"}
        for part in s["allOf"]:
            part = _resolve(part, root)
            for k, v in part.items():
                if k == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **v}
                elif k == "required":
                    merged["required"] = [*merged.get("required", []), *v]
                else:
                    merged.setdefault(k, v)
        return instance_for_schema(merged, name=name, **sub)

    kind = s.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or ["null"]
        kind = kinds[0]
    if kind is None:
        kind = "object" if "properties" in s else "array" if "items" in s else "string"
    lowered = name.lower()
    if kind == "object":
        props = s.get("properties", {})
        required = s.get("required", [])
        if not isinstance(props, dict) or not isinstance(required, list):
            raise SchemaError("properties must be an object and required a list")
        missing = [r for r in required if r not in props]
        if missing and s.get("additionalProperties") is False:
            raise SchemaError(f"required properties {missing} are not allowed by the schema")
        out: dict[str, Any] = {}
        for prop, prop_schema in props.items():
            out[prop] = instance_for_schema(prop_schema, name=prop, **sub)
        for prop in missing:
            out[prop] = _LABELS[is_quark]
        if len(out) < s.get("minProperties", 0):
            raise SchemaError("minProperties cannot be met")
        return out
    if kind == "array":
        lo, hi = s.get("minItems", 0), s.get("maxItems", 10**6)
        if lo > hi:
            raise SchemaError(f"property {name!r}: minItems > maxItems")
        count = min(max(lo, 1), hi)
        item = s.get("items", {})
        return [instance_for_schema(item, name=name, **sub) for _ in range(count)]
    if kind == "string":
        return _string(s, lowered, is_quark)
    if kind in ("number", "integer"):
        integer = kind == "integer"
        return _number(s, lowered, is_quark, quark_probability, integer, multiplicity)
    if kind == "boolean":
        want = is_quark != ("gluon" in lowered)
        return Decisive(want, not want)
    if kind == "null":
        return None
    raise SchemaError(f"unsupported type {kind!r}")


def answer_for_schema(
    schema: Any, *, is_quark: bool, quark_probability: float, multiplicity: int | None = None
) -> Any:
    """:func:`instance_for_schema`, checked against the schema with ``jsonschema``.

    Raises :class:`SchemaError` when the schema is invalid or the value does not satisfy it.
    """
    value = instance_for_schema(
        schema, is_quark=is_quark, quark_probability=quark_probability, multiplicity=multiplicity
    )
    try:
        validator = jsonschema.validators.validator_for(schema)
        validator.check_schema(schema)
        validator(schema).validate(plain(value))
    except jsonschema.exceptions.SchemaError as exc:
        raise SchemaError(f"invalid JSON schema: {exc.message}") from None
    except jsonschema.exceptions.ValidationError as exc:
        raise SchemaError(f"cannot produce a value satisfying the schema: {exc.message}") from None
    return value
