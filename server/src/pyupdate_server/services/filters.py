"""Inventory filters: Mender's filter terms, checked, and turned into SQL (docs/deployments.md §9).

A filter is a list of terms `{scope, attribute, type, value}`, all of which must hold
(Mender's inventory v2 shape). Every use of a filter is one SQL condition on the
`devices` row, built here and only here: the search (a page of devices), and a device's
membership in the dynamic groups of open deployments (one row, by primary key, at its
deployment check: services/dynamic.py). So the dry run and the hand-out cannot disagree.

Comparisons are typed as MongoDB (Mender's store) compares: a number matches only values
the device sent as JSON numbers, a string only strings; a list value matches when any of
its items does ($ne and $nin: when none does); a missing attribute matches only $ne,
$nin and `$exists: false`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import TextClause, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pyupdate_server import limits
from pyupdate_server.db import dialect
from pyupdate_server.db.models import Device, InventoryFilter
from pyupdate_server.errors import BadRequest, Conflict, NotFound

SCOPES = ("inventory", "identity", "system")
COMPARE = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
LISTS = ("$in", "$nin")
TYPES = (*COMPARE, *LISTS, "$exists", "$regex")
MAX_TERMS = 20
MAX_FILTERS = 1000
MAX_LIST = limits.MAX_ATTR_ITEMS
MAX_REGEX = 256
# attributes kept in columns rather than in a JSON document
_COLUMNS = {("identity", "status"): "devices.status", ("system", "group"): 'devices."group"'}
_SQL_OP = {"$eq": "=", "$ne": "=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_META = set(".^$*+?()[]{}|\\")

Scalar = str | int | float


@dataclass(frozen=True, slots=True)
class Term:
    scope: str
    attribute: str
    type: str
    value: Scalar | bool | tuple[Scalar, ...]

    def as_dict(self) -> dict[str, object]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"scope": self.scope, "attribute": self.attribute, "type": self.type, "value": value}


def _scalar(where: str, value: object) -> Scalar:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadRequest(f"{where}: value must be a string or a number")
    if isinstance(value, str) and len(value) > limits.MAX_ATTR_VALUE:
        raise BadRequest(f"{where}: value over {limits.MAX_ATTR_VALUE} characters")
    if isinstance(value, str) and "\x00" in value:  # no stored text can hold it
        raise BadRequest(f"{where}: value with a NUL character")
    if isinstance(value, float) and not math.isfinite(value):  # no JSON number is
        raise BadRequest(f"{where}: value must be a finite number")
    return value


def regex_literal(where: str, pattern: str) -> tuple[bool, str, bool]:
    """(anchored at the start, literal, anchored at the end): the only $regex we run.

    A regular expression in general can take exponential time to match; these forms take
    linear time on both engines and cover what Mender's UI sends ("contains", "starts
    with"): `text`, `^text`, `text$`, `^text$`, with metacharacters escaped by `\\`.
    """
    if len(pattern) > MAX_REGEX:
        raise BadRequest(f"{where}: $regex over {MAX_REGEX} characters")
    start = pattern.startswith("^")
    body = pattern[1:] if start else pattern
    end = body.endswith("$") and not body.endswith("\\$")
    body = body[:-1] if end else body
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body) and body[i + 1] in _META:
            out.append(body[i + 1])
            i += 2
            continue
        if c in _META:
            raise BadRequest(
                f"{where}: $regex supports a literal text with ^ and $ anchors only "
                f"(escape {c!r} as '\\{c}'): general expressions have no bound on their cost"
            )
        out.append(c)
        i += 1
    if not out:
        raise BadRequest(f"{where}: $regex needs some text to look for")
    return start, "".join(out), end


def parse_terms(raw: Sequence[Mapping[str, object]], field: str = "terms") -> list[Term]:
    """The terms, checked; BadRequest naming the first bad one."""
    if not raw:
        raise BadRequest(f"{field}: give at least one term")
    if len(raw) > MAX_TERMS:
        raise BadRequest(f"{field}: at most {MAX_TERMS} terms")
    terms = []
    for i, item in enumerate(raw):
        where = f"{field}[{i}]"
        scope, attribute, kind = item.get("scope"), item.get("attribute"), item.get("type")
        value = item.get("value")
        if scope not in SCOPES:
            raise BadRequest(f"{where}: scope must be one of {', '.join(SCOPES)}")
        if not isinstance(attribute, str) or not attribute:
            raise BadRequest(f"{where}: attribute must be a non-empty string")
        if len(attribute) > limits.MAX_ATTR_NAME:
            raise BadRequest(f"{where}: attribute over {limits.MAX_ATTR_NAME} characters")
        if any(c in attribute for c in '"\\') or not attribute.isprintable():
            raise BadRequest(f'{where}: attribute names with ", \\ or control characters')
        if scope == "system" and attribute != "group":
            raise BadRequest(f"{where}: the system scope has one attribute: group")
        if kind not in TYPES:
            raise BadRequest(f"{where}: type must be one of {', '.join(TYPES)}")
        assert isinstance(kind, str)
        parsed: Scalar | bool | tuple[Scalar, ...]
        if kind == "$exists":
            if not isinstance(value, bool):
                raise BadRequest(f"{where}: $exists takes true or false")
            parsed = value
        elif kind in LISTS:
            if not isinstance(value, list) or not value:
                raise BadRequest(f"{where}: {kind} takes a non-empty list")
            if len(value) > MAX_LIST:
                raise BadRequest(f"{where}: {kind} takes at most {MAX_LIST} values")
            items = tuple(_scalar(where, v) for v in value)
            if len({isinstance(v, str) for v in items}) > 1:
                raise BadRequest(f"{where}: {kind} takes all strings or all numbers, not both")
            parsed = items
        elif kind == "$regex":
            if not isinstance(value, str) or "\x00" in value:
                raise BadRequest(f"{where}: $regex takes a string (without NUL)")
            regex_literal(where, value)
            parsed = value
        else:
            parsed = _scalar(where, value)
        terms.append(Term(scope, attribute, kind, parsed))
    return terms


def load_terms(stored: Sequence[Mapping[str, object]]) -> list[Term]:
    """Terms read back from the database (checked when they were stored)."""
    return parse_terms(stored)


class _Builder:
    """One SQL condition from terms, with its binds; `prefix` keeps binds of several
    conditions in one statement apart."""

    def __init__(self, session: Session, prefix: str) -> None:
        self.session = session
        self.sql = dialect.json_sql(session)
        self.prefix = prefix
        self.params: dict[str, object] = {}

    def bind(self, value: object) -> str:
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def condition(self, terms: Sequence[Term]) -> str:
        return " AND ".join(f"({self.term(t)})" for t in terms)

    def term(self, t: Term) -> str:
        negate = t.type in ("$ne", "$nin")
        if t.type == "$exists":
            return self.exists(t) if t.value else f"NOT ({self.exists(t)})"
        column = _COLUMNS.get((t.scope, t.attribute))
        if column is not None:
            found = self.on_column(column, t)
        else:
            source = "devices.inventory" if t.scope == "inventory" else "devices.identity"
            found = self.on_json(self.sql.as_json.format(col=source), t)
        return f"NOT ({found})" if negate else found

    def exists(self, t: Term) -> str:
        column = _COLUMNS.get((t.scope, t.attribute))
        if column is not None:
            return f"{column} IS NOT NULL"
        source = "devices.inventory" if t.scope == "inventory" else "devices.identity"
        key = self.bind(dialect.json_path_key(self.session, t.attribute))
        return self.sql.present.format(src=self.sql.as_json.format(col=source), key=key)

    def on_json(self, source: str, t: Term) -> str:
        key = self.bind(dialect.json_path_key(self.session, t.attribute))
        elements = self.sql.elements.format(src=source, key=key)
        item = self.item(t, self.sql.number.format(), self.sql.string.format())
        if item is None:
            return "1 = 0"
        typed, cond = item
        is_typed = (self.sql.is_string if typed == "string" else self.sql.is_number).format()
        return f"EXISTS (SELECT 1 FROM {elements} WHERE {is_typed} AND {cond})"

    def on_column(self, column: str, t: Term) -> str:
        item = self.item(t, None, column)
        if item is None:
            return "1 = 0"  # a number never equals a text column's value
        return f"{column} IS NOT NULL AND {item[1]}"

    def item(self, t: Term, number: str | None, string: str) -> tuple[str, str] | None:
        """('string' | 'number', the condition on one item), None if nothing can match."""
        value = t.value
        if t.type == "$regex":
            assert isinstance(value, str)
            start, literal, end = regex_literal("", value)
            v = self.bind(literal)
            if self.session.get_bind().dialect.name == dialect.POSTGRESQL:
                v = f"CAST({v} AS text)"
            if start and end:
                cond = f"{string} = {v}"
            elif start:
                cond = self.sql.starts.format(s=string, v=v)
            elif end:
                cond = self.sql.ends.format(s=string, v=v)
            else:
                cond = self.sql.contains.format(s=string, v=v)
            return "string", cond
        values = value if isinstance(value, tuple) else (value,)
        typed = "string" if isinstance(values[0], str) else "number"
        if typed == "number" and number is None:
            return None
        expr = string if typed == "string" else number
        assert expr is not None
        binds = [self.typed_bind(v, typed) for v in values]
        if t.type in LISTS:
            return typed, f"{expr} IN ({', '.join(binds)})"
        collate = self.sql.collate if typed == "string" and t.type not in ("$eq", "$ne") else ""
        return typed, f"{expr}{collate} {_SQL_OP[t.type]} {binds[0]}"

    def typed_bind(self, value: object, typed: str) -> str:
        v = self.bind(value)
        if self.session.get_bind().dialect.name == dialect.POSTGRESQL:
            return f"CAST({v} AS {'text' if typed == 'string' else 'numeric'})"
        return v


def condition(session: Session, terms: Sequence[Term], prefix: str = "f") -> TextClause:
    """The terms as one SQL condition on `devices`, for a WHERE clause."""
    builder = _Builder(session, prefix)
    sql = builder.condition(terms)
    return text(sql).bindparams(**builder.params)


def members(session: Session, device_id: str, groups: Mapping[str, Sequence[Term]]) -> set[str]:
    """Which of `groups` (key -> terms) the accepted device `device_id` belongs to now:
    one statement, the device's row read by its primary key."""
    if not groups:
        return set()
    columns, params = [], {"device": device_id}
    keys = list(groups)
    for n, key in enumerate(keys):
        builder = _Builder(session, f"g{n}_")
        columns.append(f"CASE WHEN {builder.condition(groups[key])} THEN 1 ELSE 0 END")
        params.update(builder.params)
    row = session.execute(
        text(
            f"SELECT {', '.join(columns)} FROM devices"
            " WHERE devices.id = :device AND devices.status = 'accepted'"
        ),
        params,
    ).first()
    if row is None:
        return set()
    return {key for key, hit in zip(keys, row, strict=True) if hit}


def search(
    session: Session, terms: Sequence[Term], page: int, per_page: int
) -> tuple[list[Device], int]:
    """A page of the devices (not decommissioned) matching every term, and their number."""
    where = [Device.status != "decommissioned"]
    if terms:
        where.append(condition(session, terms))  # type: ignore[arg-type]
    total = session.scalar(select(func.count()).select_from(Device).where(*where)) or 0
    devices = list(
        session.scalars(
            select(Device)
            .where(*where)
            .order_by(Device.created, Device.id)
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    )
    return devices, total


def create(
    session: Session, name: str, raw_terms: Sequence[Mapping[str, object]]
) -> InventoryFilter:
    name = name.strip()
    if not name:
        raise BadRequest("name must not be empty")
    if not name.isprintable():
        raise BadRequest("name with control characters")
    terms = parse_terms(raw_terms)
    if (session.scalar(select(func.count()).select_from(InventoryFilter)) or 0) >= MAX_FILTERS:
        raise BadRequest(f"at most {MAX_FILTERS} saved filters: delete one first")
    if session.scalar(select(InventoryFilter.id).where(InventoryFilter.name == name)):
        raise Conflict(f"a filter named {name!r} already exists")
    found = InventoryFilter(name=name, terms=[t.as_dict() for t in terms])
    session.add(found)
    try:
        session.flush()
    except IntegrityError:  # the same name, created by another process meanwhile
        raise Conflict(f"a filter named {name!r} already exists") from None
    return found


def get(session: Session, filter_id: str) -> InventoryFilter:
    found = session.get(InventoryFilter, filter_id)
    if found is None:
        raise NotFound(f"filter {filter_id} not found")
    return found  # type: ignore[no-any-return]


def delete(session: Session, filter_id: str) -> None:
    """Deployments made from it keep the terms they were made with."""
    session.delete(get(session, filter_id))


def listed(session: Session, page: int, per_page: int) -> tuple[list[InventoryFilter], int]:
    total = session.scalar(select(func.count()).select_from(InventoryFilter)) or 0
    rows = session.scalars(
        select(InventoryFilter)
        .order_by(InventoryFilter.name)
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    return list(rows), total
