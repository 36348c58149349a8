"""Inventory v2 (Mender Enterprise's shape): saved filters, and the device search that
is also a filter's dry run (docs/management-api.md, "Dynamic groups")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from pyupdate_server.api.deps import CurrentUser, State
from pyupdate_server.api.management.inventory import InventoryDevice
from pyupdate_server.api.management.inventory import _out as inventory_out
from pyupdate_server.db.models import InventoryFilter
from pyupdate_server.services import filters

router = APIRouter(prefix="/api/management/v2/inventory", tags=["inventory filters"])

Page = Annotated[int, Query(ge=1, le=1_000_000)]
PerPage = Annotated[int, Query(ge=1, le=500)]
Value = str | int | float | bool | list[str | int | float]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FilterTerm(Strict):
    """Mender's FilterPredicate. Checked in one line each (400): docs/deployments.md §9."""

    scope: str = Field(max_length=32, description="inventory, identity or system")
    attribute: str = Field(max_length=1024)
    type: str = Field(
        max_length=8,
        description="$eq $ne $gt $gte $lt $lte $in $nin $exists $regex (literal, ^ and $ only)",
    )
    value: Value


class NewFilter(Strict):
    name: str = Field(min_length=1, max_length=256)
    terms: list[FilterTerm] = Field(max_length=filters.MAX_TERMS)


class FilterOut(BaseModel):
    id: str
    name: str
    terms: list[FilterTerm]


class SearchBody(Strict):
    filters: list[FilterTerm] = Field(default_factory=list, max_length=filters.MAX_TERMS)
    page: int = Field(default=1, ge=1, le=1_000_000)
    per_page: int = Field(default=20, ge=1, le=500)


def _terms(terms: list[FilterTerm], field: str) -> list[filters.Term]:
    return filters.parse_terms([t.model_dump() for t in terms], field)


def _filter_out(found: InventoryFilter) -> FilterOut:
    return FilterOut(id=found.id, name=found.name, terms=[FilterTerm(**t) for t in found.terms])


@router.post("/filters", status_code=201, response_class=Response)
def create_filter(body: NewFilter, user: CurrentUser, state: State) -> Response:
    with state.db.write() as session:
        found = filters.create(session, body.name, [t.model_dump() for t in body.terms])
        filter_id = found.id
        state.audit.record(
            session, user, "create", "filter", filter_id, names={"name": body.name},
            change=f"filter {body.name} created", after={"terms": found.terms},
        )  # fmt: skip
    return Response(status_code=201, headers={"Location": f"{router.prefix}/filters/{filter_id}"})


@router.get("/filters")
def list_filters(
    _: CurrentUser, state: State, response: Response, page: Page = 1, per_page: PerPage = 20
) -> list[FilterOut]:
    with state.db.read() as session:
        rows, total = filters.listed(session, page, per_page)
        response.headers["X-Total-Count"] = str(total)
        return [_filter_out(f) for f in rows]


@router.get("/filters/{filter_id}")
def get_filter(filter_id: str, _: CurrentUser, state: State) -> FilterOut:
    with state.db.read() as session:
        return _filter_out(filters.get(session, filter_id))


@router.delete("/filters/{filter_id}", status_code=204)
def delete_filter(filter_id: str, user: CurrentUser, state: State) -> Response:
    with state.db.write() as session:
        found = filters.get(session, filter_id)
        name, terms = found.name, found.terms
        filters.delete(session, filter_id)
        state.audit.record(
            session, user, "delete", "filter", filter_id, names={"name": name},
            change=f"filter {name} deleted", before={"terms": terms},
        )  # fmt: skip
    return Response(status_code=204)


def _search(
    state: State, response: Response, terms: list[filters.Term], page: int, per_page: int
) -> list[InventoryDevice]:
    with state.db.read() as session:
        devices, total = filters.search(session, terms, page, per_page)
        response.headers["X-Total-Count"] = str(total)
        return [inventory_out(d) for d in devices]


@router.post("/filters/search")
def search(
    body: SearchBody, _: CurrentUser, state: State, response: Response
) -> list[InventoryDevice]:
    """The devices matching every term now, a page at a time: the dry run of a filter.
    A deployment to a filter reaches only the accepted ones (identity `status`)."""
    terms = _terms(body.filters, "filters") if body.filters else []
    return _search(state, response, terms, body.page, body.per_page)


@router.get("/filters/{filter_id}/search")
def search_saved(
    filter_id: str,
    _: CurrentUser,
    state: State,
    response: Response,
    page: Page = 1,
    per_page: PerPage = 20,
) -> list[InventoryDevice]:
    with state.db.read() as session:
        terms = filters.load_terms(filters.get(session, filter_id).terms)
    return _search(state, response, terms, page, per_page)
