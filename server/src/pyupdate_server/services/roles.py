"""Roles, and the one table that says which role each management route needs.

Three roles, named as Mender Enterprise names its built-in ones (useradm's RBAC roles),
each allowed everything the one below it is:

| ours            | Mender's name                  | may                                       |
|-----------------|--------------------------------|-------------------------------------------|
| read-only       | RBAC_ROLE_OBSERVER             | read devices, artifacts, deployments      |
| release-manager | RBAC_ROLE_DEPLOYMENTS_MANAGER  | also upload/delete artifacts, deploy      |
| admin           | RBAC_ROLE_PERMIT_ALL           | also users, roles, devices, audit log     |

`RULES` maps (method, route pattern) to the least role that may call it; `authorize`
applies it on every request (api/deps.py, `current_user`). A route missing from the
table is refused (fail closed), and tests/server/test_roles.py checks that every
management route of the app is in it. The role is read from the database on every
request (the user's, capped by a token's), never from the JWT: a demotion applies to
the user's next request and to every token they hold.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pyupdate_server.errors import BadRequest, Forbidden


class Role(enum.Enum):
    READ_ONLY = "RBAC_ROLE_OBSERVER"
    RELEASE_MANAGER = "RBAC_ROLE_DEPLOYMENTS_MANAGER"
    ADMIN = "RBAC_ROLE_PERMIT_ALL"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def short(self) -> str:
        return _SHORT[self]

    @property
    def description(self) -> str:
        return _DESCRIPTION[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


_RANK = {Role.READ_ONLY: 1, Role.RELEASE_MANAGER: 2, Role.ADMIN: 3}
_SHORT = {Role.READ_ONLY: "read-only", Role.RELEASE_MANAGER: "release-manager", Role.ADMIN: "admin"}
_DESCRIPTION = {
    Role.READ_ONLY: "Read access: devices, inventory, artifacts and deployments (GET only).",
    Role.RELEASE_MANAGER: "Release manager: read access, plus upload and delete artifacts, "
    "create, pause, resume and abort deployments.",
    Role.ADMIN: "Full access: also users and their roles, device admission, groups, "
    "and the audit log.",
}
# Mender roles we do not have: refused by name, never mapped to something that can do more
_UNSUPPORTED = {
    "RBAC_ROLE_CI": "uploads only; use RBAC_ROLE_DEPLOYMENTS_MANAGER (release-manager)",
    "RBAC_ROLE_REMOTE_TERMINAL": "there is no remote terminal",
}


def parse_role(name: str) -> Role:
    """A role by Mender's name or ours (`admin`, `release-manager`, `read-only`)."""
    for role in Role:
        if name in (role.value, role.short):
            return role
    if name in _UNSUPPORTED:
        raise BadRequest(f"role {name} is not supported: {_UNSUPPORTED[name]}")
    known = ", ".join(f"{r.value} ({r.short})" for r in Role)
    raise BadRequest(f"unknown role {name[:64]!r}: known roles are {known}")


def stored_role(value: str) -> Role:
    """A role as the database holds it; a value we do not know grants nothing (403)."""
    try:
        return Role(value)
    except ValueError:
        raise Forbidden(f"unknown role {value[:64]!r} in the database: refused") from None


def parse_roles(names: list[str]) -> Role:
    """Mender's `roles` list: exactly one role (one user, one role here)."""
    if len(names) != 1:
        raise BadRequest(f"roles must name exactly one role, not {len(names)}")
    return parse_role(names[0])


def lower(a: Role, b: Role) -> Role:
    return a if a.rank <= b.rank else b


@dataclass(frozen=True, slots=True)
class Rule:
    """The least role for a route; `pat`: a personal access token may call it (a leaked
    token must not mint longer-lived ones); `role` None: no login needed."""

    role: Role | None
    pat: bool = True


PUBLIC = Rule(None)
READ = Rule(Role.READ_ONLY)
RELEASE = Rule(Role.RELEASE_MANAGER)
ADMIN = Rule(Role.ADMIN)

_USERADM = "/api/management/v1/useradm"
_DEVAUTH = "/api/management/v2/devauth"
_INVENTORY = "/api/management/v1/inventory"
_DEPLOY = "/api/management/v1/deployments"
_AUDIT = "/api/management/v1/auditlogs"
_IOT = "/api/management/v1/iot-manager"

# The one home of the rule: (method, route pattern as the router declares it) -> Rule.
RULES: dict[tuple[str, str], Rule] = {
    # useradm: your own identity and tokens for everyone; users and roles for admins
    ("POST", f"{_USERADM}/auth/login"): PUBLIC,
    ("GET", f"{_USERADM}/users/me"): READ,
    ("GET", f"{_USERADM}/roles"): READ,
    ("GET", f"{_USERADM}/users"): ADMIN,
    ("POST", f"{_USERADM}/users"): ADMIN,
    ("GET", f"{_USERADM}/users/{{user_id}}"): ADMIN,
    ("PUT", f"{_USERADM}/users/{{user_id}}"): ADMIN,
    ("DELETE", f"{_USERADM}/users/{{user_id}}"): ADMIN,
    ("GET", f"{_USERADM}/settings/tokens"): READ,
    ("POST", f"{_USERADM}/settings/tokens"): Rule(Role.READ_ONLY, pat=False),
    ("DELETE", f"{_USERADM}/settings/tokens/{{token_id}}"): READ,
    # devauth: reading for all; admission and decommissioning for admins
    ("GET", f"{_DEVAUTH}/devices"): READ,
    ("GET", f"{_DEVAUTH}/devices/count"): READ,
    ("GET", f"{_DEVAUTH}/devices/{{device_id}}"): READ,
    ("GET", f"{_DEVAUTH}/devices/{{device_id}}/auth/{{auth_id}}/status"): READ,
    ("POST", f"{_DEVAUTH}/devices"): ADMIN,
    ("DELETE", f"{_DEVAUTH}/devices/{{device_id}}"): ADMIN,
    ("PUT", f"{_DEVAUTH}/devices/{{device_id}}/auth/{{auth_id}}/status"): ADMIN,
    ("DELETE", f"{_DEVAUTH}/devices/{{device_id}}/auth/{{auth_id}}"): ADMIN,
    # inventory: reading for all; groups are device management, for admins
    ("GET", f"{_INVENTORY}/devices"): READ,
    ("GET", f"{_INVENTORY}/devices/{{device_id}}"): READ,
    ("GET", f"{_INVENTORY}/devices/{{device_id}}/group"): READ,
    ("PUT", f"{_INVENTORY}/devices/{{device_id}}/group"): ADMIN,
    ("DELETE", f"{_INVENTORY}/devices/{{device_id}}/group/{{name}}"): ADMIN,
    ("GET", f"{_INVENTORY}/groups"): READ,
    ("GET", f"{_INVENTORY}/groups/{{name}}/devices"): READ,
    ("GET", f"{_INVENTORY}/statistics"): READ,  # counts for the web UI's overview
    # artifacts and deployments: reading for all; changes for release managers
    ("GET", f"{_DEPLOY}/artifacts"): READ,
    ("GET", f"{_DEPLOY}/artifacts/list"): READ,
    ("GET", f"{_DEPLOY}/artifacts/{{artifact_id}}"): READ,
    ("GET", f"{_DEPLOY}/artifacts/{{artifact_id}}/download"): READ,
    ("POST", f"{_DEPLOY}/artifacts"): RELEASE,
    ("DELETE", f"{_DEPLOY}/artifacts/{{artifact_id}}"): RELEASE,
    ("GET", f"{_DEPLOY}/deployments"): READ,
    ("GET", f"{_DEPLOY}/deployments/{{deployment_id}}"): READ,
    ("GET", f"{_DEPLOY}/deployments/{{deployment_id}}/statistics"): READ,
    ("GET", f"{_DEPLOY}/deployments/{{deployment_id}}/devices"): READ,
    ("GET", f"{_DEPLOY}/deployments/{{deployment_id}}/devices/list"): READ,
    ("GET", f"{_DEPLOY}/deployments/{{deployment_id}}/devices/{{device_id}}/log"): READ,
    ("GET", f"{_DEPLOY}/deployments/devices/{{device_id}}"): READ,  # a device's history
    ("POST", f"{_DEPLOY}/deployments"): RELEASE,
    ("POST", f"{_DEPLOY}/deployments/group/{{group}}"): RELEASE,
    ("PUT", f"{_DEPLOY}/deployments/{{deployment_id}}/status"): RELEASE,
    # inventory v2 (dynamic groups): reading and searching for all; saved filters are
    # groups, for admins; deploying to one is a deployment, for release managers
    ("GET", "/api/management/v2/inventory/filters"): READ,
    ("GET", "/api/management/v2/inventory/filters/{filter_id}"): READ,
    ("GET", "/api/management/v2/inventory/filters/{filter_id}/search"): READ,
    ("POST", "/api/management/v2/inventory/filters/search"): READ,
    ("POST", "/api/management/v2/inventory/filters"): ADMIN,
    ("DELETE", "/api/management/v2/inventory/filters/{filter_id}"): ADMIN,
    ("POST", "/api/management/v2/deployments/deployments"): RELEASE,
    # the audit log tells who did what: admins only, as in Mender
    ("GET", f"{_AUDIT}/logs"): ADMIN,
    # webhooks send fleet events to a URL of the caller's choosing: admins only
    ("GET", f"{_IOT}/integrations"): ADMIN,
    ("POST", f"{_IOT}/integrations"): ADMIN,
    ("GET", f"{_IOT}/integrations/{{integration_id}}"): ADMIN,
    ("PUT", f"{_IOT}/integrations/{{integration_id}}/credentials"): ADMIN,
    ("DELETE", f"{_IOT}/integrations/{{integration_id}}"): ADMIN,
    ("GET", f"{_IOT}/integrations/{{integration_id}}/deliveries"): ADMIN,
}


def authorize(method: str, pattern: str, role: Role, via_pat: bool) -> None:
    """Forbidden (403, one line) unless `role` may call `method pattern`."""
    rule = RULES.get((method, pattern))
    if rule is None:
        # fail closed: a route nobody classified is nobody's
        raise Forbidden(f"{method} {pattern} has no role rule: refused")
    if rule.role is None:
        return
    if via_pat and not rule.pat:
        raise Forbidden(f"{method} {pattern} needs a login, not a personal access token")
    if not role.at_least(rule.role):
        raise Forbidden(
            f"{method} {pattern} needs role {rule.role.value} ({rule.role.short}); "
            f"this request has {role.value} ({role.short})"
        )
