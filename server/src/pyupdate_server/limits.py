"""Every fixed limit on what a client may send, in one place.

docs/security.md ("Limits") lists them with the configurable ones from settings.py;
the OpenAPI document states each where its route is described. A request over a
limit is refused before the work: 413 for a size, 400 for a shape, one line each.
"""

from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB

# bodies, counted while they stream in (api/body_limit.py), Content-Length checked first
MAX_AUTH_BODY = 64 * KIB  # device auth request
MAX_INVENTORY_BODY = 1 * MIB  # inventory PUT/PATCH
MAX_LOG_BODY = 1 * MIB  # one deployment log
MAX_JSON_BODY = 256 * KIB  # every other body but the artifact upload (max_artifact_size)

# device identity (auth requests and preauthorization)
MAX_IDENTITY = 4 * KIB  # canonical JSON of id_data
MAX_IDENTITY_ATTRS = 32
MAX_AUTH_SETS = 16  # keys (auth sets) per device: each new key of a known identity is one

# an accepted device's inventory
MAX_INVENTORY_ATTRS = 256  # after a PATCH merges into what is stored
MAX_ATTR_NAME = 1024  # characters
MAX_ATTR_VALUE = 4 * KIB  # characters of a value, or of all items of a list together
MAX_ATTR_ITEMS = 128  # items in a list value

# deployment logs
MAX_LOG_MESSAGES = 10_000

# JSON nesting: Python's parser recurses; anything deeper is refused as 400
MAX_JSON_DEPTH = 32


def json_depth(value: object, stop: int = MAX_JSON_DEPTH + 1) -> int:
    """How deep `value` nests (a scalar is 0), counting no further than `stop`.

    Iterative: it must not recurse on the very input it guards against.
    """
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[object] | tuple[object, ...] = tuple(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        if deepest >= stop:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest
