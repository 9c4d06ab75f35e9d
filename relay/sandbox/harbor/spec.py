"""Harbor's swagger, vendored, and request validation against it.

``swagger-v2.15.2.yaml`` beside this module is ``api/v2.0/swagger.yaml`` of goharbor/harbor at
tag v2.15.2, copied unchanged. Copyright Project Harbor Authors, Apache License 2.0
(https://github.com/goharbor/harbor/blob/main/LICENSE).

Swagger 2.0 definitions are JSON Schema draft 4, so ``jsonschema`` validates bodies directly.
The emulator is stricter than Harbor in one deliberate way: every object definition gets
``additionalProperties: false`` (Harbor's go-swagger models drop unknown fields silently, which
hides client typos), unless :attr:`Quirks.unknown_fields` is ``"ignore"``. ``x-nullable``
fields also accept ``null`` and the Go integer formats get their ranges, as the generated
models do.

``jsonschema`` and ``referencing`` are imported lazily: ``pip install relay[sandbox]``.
"""

from __future__ import annotations

import copy
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from relay.sandbox.harbor import errors
from relay.sandbox.harbor.quirks import FIELD_SINCE, Version

SPEC_FILE = Path(__file__).with_name("swagger-v2.15.2.yaml")
SPEC_SHA256 = "9be2b505d4c6baba40e6d646eac2b0aa4ff11f938727ae1eaa491ca01ebf71c7"
BASE_PATH = "/api/v2.0"

_INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
_GO_TYPES = {"boolean": "bool", "string": "string", "number": "float64", "array": "[]"}


@functools.lru_cache(maxsize=1)
def load_spec() -> dict[str, Any]:
    """The vendored swagger, parsed once (libyaml's CSafeLoader when available: ~0.2 s)."""
    data = SPEC_FILE.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SPEC_SHA256:
        raise RuntimeError(f"{SPEC_FILE.name} was modified: sha256 {digest} != {SPEC_SHA256}")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec: dict[str, Any] = yaml.load(data, Loader=loader)  # noqa: S506 - a safe loader
    return spec


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "query", "path", "header", "body"
    schema: dict[str, Any]  # type/format/maximum/... for non-body; the schema for body


@functools.lru_cache(maxsize=256)
def operation_params(path: str, method: str) -> tuple[Param, ...]:
    """The parameters of one operation, ``$ref``s resolved."""
    spec = load_spec()
    op = spec["paths"][path][method.lower()]
    out: list[Param] = []
    for raw in op.get("parameters", []):
        p = raw
        if "$ref" in p:
            p = spec["parameters"][p["$ref"].rsplit("/", 1)[1]]
        if p["in"] == "body":
            out.append(Param(p["name"], "body", p["schema"]))
        else:
            out.append(Param(p["name"], p["in"], p))
    return tuple(out)


def _nullable(prop: dict[str, Any]) -> bool:
    return bool(prop.get("x-nullable") or prop.get("x-isnullable"))


def _strict_schema(node: Any, strict: bool) -> Any:
    """A copy of a definition with the emulator's additions (see the module docstring)."""
    if isinstance(node, list):
        return [_strict_schema(n, strict) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict_schema(v, strict) for k, v in node.items()}
    fmt = out.get("format")
    if out.get("type") == "integer" and fmt in _INT_RANGES:
        out["minimum"], out["maximum"] = _INT_RANGES[fmt]
    props = out.get("properties")
    if isinstance(props, dict):
        for name, prop in props.items():
            if isinstance(prop, dict) and _nullable(node["properties"][name]):
                if "type" in prop:
                    prop["type"] = [prop["type"], "null"]
                elif "$ref" in prop:
                    props[name] = {"anyOf": [{"type": "null"}, prop]}
        if strict and "additionalProperties" not in out:
            out["additionalProperties"] = False
    return out


@functools.lru_cache(maxsize=16)
def _registry(version: Version, strict: bool) -> Any:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    spec = load_spec()
    definitions = copy.deepcopy(spec["definitions"])
    for (model, field), since in FIELD_SINCE.items():
        if version < since:
            definitions[model]["properties"].pop(field, None)
    document = {"definitions": _strict_schema(definitions, strict)}
    resource = Resource.from_contents(document, default_specification=DRAFT4)
    return Registry().with_resource("harbor", resource)


def definition_properties(model: str, version: Version) -> set[str]:
    """The properties a version's model knows (for pruning when unknown fields are ignored)."""
    props = set(load_spec()["definitions"][model].get("properties", {}))
    return {p for p in props if version >= FIELD_SINCE.get((model, p), (0, 0, 0))}


def _empty(value: Any) -> bool:
    return value is None or value is False or value == 0 or value == "" or value in ([], {})


def render(model: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A response body as go-swagger's generated model marshals it.

    Optional properties carry ``omitempty`` unless the swagger says ``x-omitempty: false``, so
    zero values vanish: a disabled policy has no ``enabled`` key, an empty description no
    ``description``. Pointers (``x-nullable``/``x-isnullable``, nested objects) stay when set;
    date-times are structs and always stay; an untyped property is an interface{}, omitted
    only when nil.
    """
    props: dict[str, Any] = load_spec()["definitions"][model].get("properties", {})
    out: dict[str, Any] = {}
    for key, value in payload.items():
        prop = props.get(key, {})
        if value is None:
            continue
        ref = prop.get("$ref")
        items = prop.get("items", {}) if prop.get("type") == "array" else {}
        if ref and isinstance(value, dict):
            value = render(ref.rsplit("/", 1)[1], value)
        elif items.get("$ref") and isinstance(value, list):
            inner = items["$ref"].rsplit("/", 1)[1]
            value = [render(inner, v) if isinstance(v, dict) else v for v in value]
        keep = (
            prop.get("x-omitempty") is False
            or prop.get("x-nullable")
            or prop.get("x-isnullable")
            or prop.get("format") == "date-time"
            or ref is not None
            or "type" not in prop
            or not _empty(value)
        )
        if keep:
            out[key] = value
    return out


def _go_field(param: str, model: str | None, path: list[Any]) -> str:
    dotted = ".".join(str(p) for p in path if not isinstance(p, int))
    return f"{model or param}.{dotted}" if dotted else (model or param)


def validate_body(
    param: str, schema: dict[str, Any], body: Any, *, version: Version, strict: bool
) -> list[str]:
    """go-swagger-like messages for what is wrong with a body; [] when it is fine."""
    from jsonschema import Draft4Validator

    model = schema["$ref"].rsplit("/", 1)[1] if "$ref" in schema else None
    root = {"$ref": f"harbor#/definitions/{model}"} if model else schema
    validator = Draft4Validator(root, registry=_registry(version, strict))
    messages: list[str] = []
    for err in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.path))):
        path = list(err.absolute_path)
        where = ".".join([param, *(str(p) for p in path)])
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            for name in extra:
                # go-openapi/errors PropertyNotAllowed
                messages.append(f"{where}.{name} in body is a forbidden property")
        elif err.validator == "type":
            # Harbor's models are plain Go structs: a wrong JSON type fails json.Unmarshal,
            # which go-swagger reports as a ParseError of the whole body.
            expected = err.validator_value
            wanted = expected[0] if isinstance(expected, list) else expected
            go_type = _GO_TYPES.get(str(wanted), str(wanted))
            if wanted == "integer":
                go_type = str(err.schema.get("format", "int64"))
            elif wanted == "object":
                go_type = "models." + (model or "object")
            messages.append(
                f'parsing {param} body from "" failed, because json: cannot unmarshal '
                f"{_json_kind(err.instance)} into Go struct field "
                f"{_go_field(param, model, path)} of type {go_type}"
            )
        elif err.validator in ("maximum", "minimum") and "format" in err.schema:
            messages.append(
                f'parsing {param} body from "" failed, because json: cannot unmarshal number '
                f"{err.instance} into Go struct field {_go_field(param, model, path)} of type "
                f"{err.schema['format']}"
            )
        elif err.validator == "maxLength":
            messages.append(f"{where} in body should be at most {err.validator_value} chars long")
        else:
            messages.append(f"{where} in body: {err.message}")
    return messages


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"


_TRUE = {"true", "1", "yes", "ok", "y", "on", "selected", "checked", "t", "enabled"}
_FALSE = {"false", "0", "no", "n", "off", "f", "disabled", ""}


def convert_param(p: Param, raw: str) -> tuple[Any, str | None]:
    """A query/path/header value converted like go-swagger (swag.Convert*); (value, error)."""
    kind = p.schema.get("type")
    fmt = p.schema.get("format")
    where = p.where
    if kind == "integer":
        go = fmt or "int64"
        try:
            value = int(raw, 10)
        except ValueError:
            return None, f'{p.name} in {where} must be of type {go}: "{raw}"'
        lo, hi = _INT_RANGES.get(go, _INT_RANGES["int64"])
        if not lo <= value <= hi:
            return None, f'{p.name} in {where} must be of type {go}: "{raw}"'
        if "maximum" in p.schema and value > p.schema["maximum"]:
            limit = p.schema["maximum"]
            return value, f"{p.name} in {where} should be less than or equal to {limit}"
        if "minimum" in p.schema and value < p.schema["minimum"]:
            return value, (
                f"{p.name} in {where} should be greater than or equal to {p.schema['minimum']}"
            )
        return value, None
    if kind == "boolean":
        low = raw.lower()
        if low in _TRUE:
            return True, None
        if low in _FALSE:
            return False, None
        return None, f'{p.name} in {where} must be of type boolean: "{raw}"'
    if kind == "string" and "minLength" in p.schema and len(raw) < p.schema["minLength"]:
        return raw, f"{p.name} in {where} should be at least {p.schema['minLength']} chars long"
    return raw, None


def bad_body_json(param: str, detail: str) -> errors.HarborError:
    return errors.validation([f'parsing {param} body from "" failed, because {detail}'])
