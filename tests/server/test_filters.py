"""Saved inventory filters and the device search (docs/deployments.md §9), on both engines:
typed comparisons as Mender's store makes them, bad terms refused in one line, the
inventory v2 routes."""

from __future__ import annotations

import pytest
from server_helpers import accept, make_device

from pyupdate_server.db.engine import Database
from pyupdate_server.db.models import Device
from pyupdate_server.errors import BadRequest
from pyupdate_server.services import filters

V2 = "/api/management/v2/inventory"


@pytest.fixture
def db(tmp_path, database_url):
    database = Database(database_url or f"sqlite:///{tmp_path / 'f.db'}")
    database.migrate()
    yield database
    database.dispose()


FLEET = {
    "a": (
        "accepted",
        None,
        {"device_type": "rpi4", "cpu": 4, "tags": ["a", "b"], "city": "berlin"},
    ),
    "b": ("accepted", None, {"device_type": "qemu", "cpu": "4", "tags": ["c"], "v": "10"}),
    "c": ("accepted", None, {"device_type": "rpi4", "cpu": 8.5, "v": "9"}),
    "d": ("decommissioned", None, {"device_type": "rpi4"}),
    "e": ("pending", "lab", {}),
}


@pytest.fixture
def fleet(db):
    ids = {}
    with db.write() as s:
        for name, (status, group, inventory) in FLEET.items():
            d = Device(
                identity=f'{{"mac":"{name}"}}', status=status, inventory=inventory, group=group
            )
            s.add(d)
            s.flush()
            ids[d.id] = name
    return ids


def found(db, fleet, *terms):
    parsed = filters.parse_terms(
        [dict(zip(("scope", "attribute", "type", "value"), t, strict=True)) for t in terms]
    )
    with db.read() as s:
        devices, total = filters.search(s, parsed, 1, 100)
    names = sorted(fleet[d.id] for d in devices)
    assert total == len(names)
    return names


INV = "inventory"


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ((INV, "device_type", "$eq", "rpi4"), ["a", "c"]),  # d is decommissioned
        ((INV, "cpu", "$eq", 4), ["a"]),  # a number matches numbers only: b sent "4"
        ((INV, "cpu", "$eq", "4"), ["b"]),
        ((INV, "cpu", "$gt", 4), ["c"]),
        ((INV, "cpu", "$gte", 4), ["a", "c"]),
        ((INV, "cpu", "$lt", 5), ["a"]),
        ((INV, "v", "$gt", "10"), ["c"]),  # strings compare as strings: "9" > "10"
        ((INV, "v", "$lte", "10"), ["b"]),
        ((INV, "device_type", "$ne", "rpi4"), ["b", "e"]),  # missing: not equal
        ((INV, "tags", "$eq", "b"), ["a"]),  # a list matches when an item does
        ((INV, "tags", "$in", ["c", "x"]), ["b"]),
        ((INV, "tags", "$nin", ["a", "c"]), ["c", "e"]),
        ((INV, "cpu", "$in", [8.5, 4]), ["a", "c"]),
        ((INV, "city", "$exists", True), ["a"]),
        ((INV, "city", "$exists", False), ["b", "c", "e"]),
        ((INV, "city", "$regex", "^ber"), ["a"]),
        ((INV, "city", "$regex", "lin$"), ["a"]),
        ((INV, "city", "$regex", "erl"), ["a"]),
        ((INV, "city", "$regex", "^berlin$"), ["a"]),
        ((INV, "city", "$regex", "^erl"), []),
        ((INV, "nobody-has-this", "$eq", "x"), []),
        (("system", "group", "$eq", "lab"), ["e"]),
        (("system", "group", "$exists", False), ["a", "b", "c"]),
        (("identity", "status", "$eq", "accepted"), ["a", "b", "c"]),
        (("identity", "status", "$ne", "accepted"), ["e"]),
        (("identity", "mac", "$in", ["a", "e"]), ["a", "e"]),
        (("identity", "status", "$eq", 1), []),  # a number never equals a text column
    ],
)
def test_terms_compare_typed_as_mender_does(db, fleet, term, expected):
    assert found(db, fleet, term) == expected


def test_every_term_must_hold(db, fleet):
    assert found(db, fleet, (INV, "device_type", "$eq", "rpi4"), (INV, "cpu", "$gt", 5)) == ["c"]


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ({"scope": "tags", "attribute": "x", "type": "$eq", "value": "1"}, "scope must be"),
        ({"scope": INV, "attribute": "", "type": "$eq", "value": "1"}, "attribute must"),
        ({"scope": INV, "attribute": 'a"b', "type": "$eq", "value": "1"}, "attribute names"),
        ({"scope": "system", "attribute": "created_ts", "type": "$eq", "value": "1"}, "group"),
        ({"scope": INV, "attribute": "x", "type": "$like", "value": "1"}, "type must be"),
        ({"scope": INV, "attribute": "x", "type": "$eq", "value": True}, "string or a number"),
        ({"scope": INV, "attribute": "x", "type": "$eq", "value": ["a"]}, "string or a number"),
        ({"scope": INV, "attribute": "x", "type": "$in", "value": []}, "non-empty list"),
        ({"scope": INV, "attribute": "x", "type": "$in", "value": ["a", 1]}, "not both"),
        ({"scope": INV, "attribute": "x", "type": "$in", "value": ["a"] * 129}, "at most 128"),
        ({"scope": INV, "attribute": "x", "type": "$exists", "value": "yes"}, "true or false"),
        ({"scope": INV, "attribute": "x", "type": "$regex", "value": "(a+)+$"}, "literal"),
        ({"scope": INV, "attribute": "x", "type": "$regex", "value": "^$"}, "some text"),
        ({"scope": INV, "attribute": "x", "type": "$eq", "value": "v" * 5000}, "4096"),
        ({"scope": INV, "attribute": "x", "type": "$eq", "value": "a\x00"}, "NUL"),
        ({"scope": INV, "attribute": "x", "type": "$regex", "value": "a\x00"}, "NUL"),
    ],
)
def test_bad_terms_are_refused_in_one_line(term, message):
    with pytest.raises(BadRequest, match=r"^terms\[0\]: ") as exc:
        filters.parse_terms([term])
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_term_counts_are_bounded():
    term = {"scope": INV, "attribute": "x", "type": "$eq", "value": "1"}
    with pytest.raises(BadRequest, match="at least one"):
        filters.parse_terms([])
    with pytest.raises(BadRequest, match=f"at most {filters.MAX_TERMS}"):
        filters.parse_terms([term] * (filters.MAX_TERMS + 1))


def test_regex_escapes_are_literal():
    assert filters.regex_literal("", r"^1\.2") == (True, "1.2", False)
    assert filters.regex_literal("", r"a\$") == (False, "a$", False)


def _new(client, admin, name, terms):
    return client.post(f"{V2}/filters", json={"name": name, "terms": terms}, headers=admin)


def test_filter_crud_in_menders_shape(client, admin):
    terms = [{"scope": INV, "attribute": "device_type", "type": "$eq", "value": "rpi4"}]
    r = _new(client, admin, "pis", terms)
    assert r.status_code == 201, r.text
    location = r.headers["Location"]
    filter_id = location.rsplit("/", 1)[1]
    assert client.get(location, headers=admin).json() == {
        "id": filter_id,
        "name": "pis",
        "terms": terms,
    }
    r = _new(client, admin, "pis", terms)
    assert r.status_code == 409 and r.json()["error"] == "a filter named 'pis' already exists"
    r = client.get(f"{V2}/filters", headers=admin, params={"per_page": 1})
    assert r.headers["X-Total-Count"] == "1" and [f["name"] for f in r.json()] == ["pis"]
    assert client.delete(location, headers=admin).status_code == 204
    assert client.get(location, headers=admin).status_code == 404
    assert client.delete(location, headers=admin).status_code == 404


def test_bad_filters_are_one_line_4xx(client, admin):
    ok = {"scope": INV, "attribute": "x", "type": "$eq", "value": "1"}
    cases = [
        ({"name": "x", "terms": [{**ok, "type": "$where"}]}, 400),
        ({"name": "x", "terms": []}, 400),
        ({"name": " ", "terms": [ok]}, 400),
        ({"name": "x", "terms": [{**ok, "extra": 1}]}, 422),
        ({"name": "x", "terms": [ok] * 21}, 422),
        ({"name": "x", "terms": [ok], "sort": []}, 422),
    ]
    for body, status in cases:
        r = client.post(f"{V2}/filters", json=body, headers=admin)
        assert r.status_code == status, (body, r.text)
        assert "\n" not in r.json()["error"]


def test_search_is_the_dry_run_paged(client, admin):
    devices = [make_device(client, f"s{i}") for i in range(5)]
    ids = [accept(client, admin, d) for d in devices]
    for i, d in enumerate(devices):
        attrs = [{"name": "channel", "value": "beta" if i % 2 == 0 else "stable"}]
        r = client.put("/api/devices/v1/inventory/device/attributes", json=attrs, headers=d.headers)
        assert r.status_code == 200
    beta = [{"scope": INV, "attribute": "channel", "type": "$eq", "value": "beta"}]
    r = client.post(
        f"{V2}/filters/search", json={"filters": beta, "page": 1, "per_page": 2}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.headers["X-Total-Count"] == "3"
    assert [d["id"] for d in r.json()] == [ids[0], ids[2]]
    r = client.post(
        f"{V2}/filters/search", json={"filters": beta, "page": 2, "per_page": 2}, headers=admin
    )
    assert [d["id"] for d in r.json()] == [ids[4]]
    saved = _new(client, admin, "beta", beta).headers["Location"]
    r = client.get(f"{saved}/search", headers=admin, params={"per_page": 500})
    assert r.headers["X-Total-Count"] == "3" and len(r.json()) == 3
    r = client.post(f"{V2}/filters/search", json={"per_page": 501}, headers=admin)
    assert r.status_code == 422
