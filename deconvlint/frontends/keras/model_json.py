"""A Keras model's configuration: JSON text, parsed into plain dicts and lists, bounded.

Nothing here deserialises Keras objects: a ``Lambda`` layer's ``function`` stays a string (its
marshalled bytecode is never unmarshalled), a custom class stays a name.

>>> parse_model_json(b'{"class_name": "Sequential", "config": {"layers": []}}', "config.json")
{'class_name': 'Sequential', 'config': {'layers': []}}
>>> parse_model_json(b"[1, 2]", "config.json")
Traceback (most recent call last):
...
deconvlint.errors.LoadError: config.json is not a JSON object (a list)
"""

from __future__ import annotations

import json
from typing import Any

from deconvlint.errors import LoadError, one_line

#: Largest configuration read: a real one is kilobytes (a 300-layer functional model, 0.5 MB).
MAX_CONFIG_BYTES = 64 << 20
#: Deepest nesting of lists and objects: a layer is about 8 deep, each nested model adds ~5.
MAX_JSON_DEPTH = 256

_KINDS = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def json_depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (a scalar is 0), without recursion.

    >>> json_depth({"a": [1, {"b": []}]}), json_depth(3)
    (4, 0)
    """
    if not isinstance(value, (dict, list)):
        return 0
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def parse_model_json(raw: bytes | str, what: str) -> dict[str, Any]:
    """The JSON object in ``raw`` (UTF-8 bytes, or text), named ``what`` in errors.

    At most :data:`MAX_CONFIG_BYTES` and :data:`MAX_JSON_DEPTH` deep; anything else (not
    UTF-8, not JSON, not an object) is a :class:`LoadError` with a one-line cause.
    """
    if len(raw) > MAX_CONFIG_BYTES:
        raise LoadError(f"{what} is larger than {MAX_CONFIG_BYTES >> 20} MiB")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")  # json.loads would guess UTF-16 and UTF-32 too
        except UnicodeDecodeError as exc:
            raise LoadError(f"{what} is not UTF-8 text (byte {exc.start})") from None
    try:
        value = json.loads(raw)
    except RecursionError:
        raise LoadError(f"{what} nests lists and objects too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and int() of a number of 5,000 digits
        raise LoadError(f"{what} is not valid JSON: {one_line(exc)}") from None
    if not isinstance(value, dict):
        kind = "null" if value is None else _KINDS.get(type(value), type(value).__name__)
        raise LoadError(f"{what} is not a JSON object ({kind})")
    if json_depth(value) > MAX_JSON_DEPTH:
        raise LoadError(f"{what} nests lists and objects more than {MAX_JSON_DEPTH} deep")
    return value
