"""Webhooks (docs/webhooks.md): events into the outbox with their change, delivered to a
real HTTP receiver started here that checks every signature, retried, given up, and
never in the way of the devices; on SQLite and PostgreSQL (conftest.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from server_helpers import ADMIN, accept, make_device
from sqlalchemy import func, select
from test_rollout import add_artifact, add_device, poll, report

from pyupdate_server.app import create_app
from pyupdate_server.db.models import WebhookDelivery
from pyupdate_server.services import control, creation, webhooks
from pyupdate_server.services.phases import PhaseSpec, Threshold
from pyupdate_server.services.users import create_user
from pyupdate_server.settings import Settings
from pyupdate_testing.device_keys import pubkey_pem
from pyupdate_testing.server import live_server

IOT = "/api/management/v1/iot-manager/integrations"
NEXT = "/api/devices/v1/deployments/device/deployments/next"
PROVIDES = {"artifact_name": "base", "device_type": "dt"}
SECRET = "5f" * 32


class Receiver:
    """A webhook receiver on 127.0.0.1: answers `answers` in turn (then 200), after
    `delay` seconds each, and keeps every request it got."""

    def __init__(self, answers: tuple[int, ...] = (), delay: float = 0) -> None:
        self.answers = list(answers)
        self.delay = delay
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.got.append((dict(self.headers.items()), body))
                    status = receiver.answers.pop(0) if receiver.answers else 200
                time.sleep(receiver.delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *_: object) -> None:
                pass

        # a backlog for every delivery in flight: past the default 5, a connect waits
        # for the kernel's SYN retry (1 s), as long as the tests' whole timeout
        ThreadingHTTPServer.request_queue_size = 64
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def events(self) -> list[dict]:
        """Every request's event, each signature checked as docs/webhooks.md says."""
        with self.lock:
            got = list(self.got)
        out = []
        for headers, body in got:
            verify(SECRET, headers, body)
            out.append(json.loads(body))
        return out

    def wait(self, done: Callable[[list[dict]], bool], timeout: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout
        while not done(events := self.events()):
            assert time.monotonic() < deadline, f"receiver got only {events}"
            time.sleep(0.1)
        return events

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def verify(secret: str, headers: dict[str, str], body: bytes) -> None:
    """The receiver's check, as docs/webhooks.md gives it."""
    timestamp = headers["X-Pyupdate-Timestamp"]
    signed = hmac.new(bytes.fromhex(secret), f"{timestamp}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(headers["X-Pyupdate-Signature"], "sha256=" + signed.hexdigest())
    assert abs(time.time() - int(timestamp)) < 300
    mender = hmac.new(bytes.fromhex(secret), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Men-Signature"], mender)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _client(settings: Settings, **webhook: int | bool) -> TestClient:
    quick = {"webhook_retry_base": 1, "webhook_timeout": 1, "webhook_max_attempts": 3}
    return TestClient(create_app(settings.replace(**(quick | webhook))))


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with _client(settings) as c:
        yield c


def add_hook(client: TestClient, admin: dict[str, str], url: str, **extra: object) -> str:
    body = {"provider": "webhook", "credentials": {"type": "http", "http": {"url": url}}}
    body["credentials"]["http"]["secret"] = SECRET  # type: ignore[index]
    r = client.post(IOT, json=body | extra, headers=admin)
    assert r.status_code == 201, r.text
    return r.headers["location"].rsplit("/", 1)[1]


def attempts(client: TestClient, admin: dict[str, str], hook: str) -> list[dict]:
    r = client.get(f"{IOT}/{hook}/deliveries", headers=admin)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_every_event_arrives_once_signed(client, admin, receiver):
    hook = add_hook(client, admin, receiver.url)
    db = client.app.state.server.db  # type: ignore[attr-defined]
    # devices, through the APIs: accepted, inventory twice (once changed), rejected, gone
    first, second = make_device(client, "hook-1"), make_device(client, "hook-2")
    first_id = accept(client, admin, first)
    for _ in range(2):
        r = client.patch(
            "/api/devices/v1/inventory/device/attributes",
            json=[{"name": "device_type", "value": "dt"}],
            headers=first.headers,
        )
        assert r.status_code == 200
    second_id = accept(client, admin, second)
    auth = client.get(f"/api/management/v2/devauth/devices/{second_id}", headers=admin).json()
    r = client.put(
        f"/api/management/v2/devauth/devices/{second_id}/auth/{auth['auth_sets'][0]['id']}/status",
        json={"status": "rejected"},
        headers=admin,
    )
    assert r.status_code == 204
    assert client.delete(f"/api/management/v2/devauth/devices/{second_id}", headers=admin)
    # a deployment, through the services: a failure pauses it, a person resumes, aborts
    add_artifact(db, "r2")
    device = add_device(db, "hook-3")
    waiting = add_device(db, "hook-4")  # never handed out: paused, then aborted
    with db.write() as s:
        dep = creation.create_deployment(
            s,
            name="hooked",
            artifact_name="r2",
            devices=[device, waiting],
            phase_specs=[PhaseSpec()],
            failure_threshold=Threshold(1, "count"),
        ).id
    assert poll(db, device) == dep
    report(db, device, dep, "failure")
    with db.write() as s:
        control.resume(s, dep)
    with db.write() as s:
        control.abort(s, dep)
    # and one that succeeds: its phase is healthy, then it finishes
    healthy = add_device(db, "hook-5")
    with db.write() as s:
        ok = creation.create_deployment(
            s, name="fine", artifact_name="r2", devices=[healthy], phase_specs=[PhaseSpec()]
        ).id
    assert poll(db, healthy) == ok
    for status in ("downloading", "installing", "rebooting", "success"):
        report(db, healthy, ok, status)

    wanted = {
        "device-status-changed": 3,  # accepted, accepted, rejected (a new pending device: none)
        "device-provisioned": 2,
        "device-inventory-changed": 1,
        "device-decommissioned": 1,
        "deployment-created": 2,
        "deployment-phase-started": 2,
        "deployment-phase-healthy": 1,
        "deployment-device-failed": 1,
        "deployment-paused": 1,
        "deployment-resumed": 1,
        "deployment-aborted": 1,
        "deployment-finished": 2,
    }
    events = receiver.wait(lambda got: len(got) >= sum(wanted.values()))
    time.sleep(1.5)  # and nothing more
    events = receiver.events()
    kinds: dict[str, int] = {}
    for event in events:
        kinds[event["type"]] = kinds.get(event["type"], 0) + 1
    assert kinds == wanted
    assert len({e["id"] for e in events}) == len(events)
    assert set(wanted) == set(webhooks.EVENTS)
    by_type = {e["type"]: e for e in events}
    provisioned = [e["data"] for e in events if e["type"] == "device-provisioned"]
    assert {d["id"]: d["identity_data"]["mac"] for d in provisioned}[first_id] == "hook-1"
    assert by_type["device-decommissioned"]["data"] == {"id": second_id}
    assert by_type["device-inventory-changed"]["data"]["id"] == first_id
    paused = by_type["deployment-paused"]["data"]
    assert (paused["id"], paused["paused"], paused["numbers"]["failures"]) == (dep, True, 1)
    finished = {e["data"]["id"]: e["data"] for e in events if e["type"] == "deployment-finished"}
    assert finished[dep]["statistics"]["failure"] == 1 and finished[dep]["aborted"]
    assert finished[ok]["statistics"]["success"] == 1
    assert all(e["time"].endswith("Z") for e in events)
    log = attempts(client, admin, hook)
    assert {a["outcome"] for a in log} == {"delivered"} and len(log) == len(events)


def test_an_event_of_a_change_that_rolls_back_is_never_sent(client, admin, receiver):
    add_hook(client, admin, receiver.url)
    db = client.app.state.server.db  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError), db.write() as s:
        webhooks.emit(s, "device-decommissioned", {"id": "x"})
        raise RuntimeError("the change fails after its event was queued")
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def test_a_failing_receiver_gets_the_event_again_then_it_is_delivered(client, admin):
    failing = Receiver(answers=(500,))
    try:
        hook = add_hook(client, admin, failing.url, events=["device-decommissioned"])
        db = client.app.state.server.db  # type: ignore[attr-defined]
        with db.write() as s:
            webhooks.emit(s, "device-decommissioned", {"id": "d1"})
        events = failing.wait(lambda got: len(got) >= 2)
        assert [e["id"] for e in events] == [events[0]["id"]] * 2  # the same event
        assert [h["X-Pyupdate-Attempt"] for h, _ in failing.got] == ["1", "2"]
        log = attempts(client, admin, hook)
        assert [(a["attempt"], a["status_code"], a["outcome"]) for a in log] == [
            (2, 200, "delivered"),
            (1, 500, "retry"),
        ]
    finally:
        failing.close()


def test_a_receiver_that_never_answers_costs_devices_nothing_and_ends_failed(settings):
    silent = Receiver(delay=30)
    try:
        with _client(settings, webhook_max_attempts=2) as client:
            headers = login(client)
            hook = add_hook(client, headers, silent.url)
            device = make_device(client, "patient")
            accept(client, headers, device)  # two events, each held 1 s per attempt
            db = client.app.state.server.db  # type: ignore[attr-defined]
            with db.write() as s:
                for n in range(20):
                    webhooks.emit(s, "device-decommissioned", {"id": f"busy-{n}"})
            slowest = 0.0
            deadline = time.monotonic() + 30
            while len(attempts(client, headers, hook)) < 2 * 22:
                assert time.monotonic() < deadline, attempts(client, headers, hook)
                start = time.monotonic()
                assert client.get(NEXT, params=PROVIDES, headers=device.headers).status_code == 204
                slowest = max(slowest, time.monotonic() - start)
                time.sleep(0.02)
            log = attempts(client, headers, hook)
            assert slowest < 0.5, f"a poll took {slowest:.2f} s while deliveries hung"
            assert {a["outcome"] for a in log if a["attempt"] == 1} == {"retry"}
            assert {a["outcome"] for a in log if a["attempt"] == 2} == {"failed"}
            assert {a["error"] for a in log} == {"no answer within 1 s"}
            integration = client.get(f"{IOT}/{hook}", headers=headers).json()
            assert integration["pending"] == 0
    finally:
        silent.close()


def login(client: TestClient) -> dict[str, str]:
    """An admin's headers, on an app made here (not the `client` fixture's)."""
    with client.app.state.server.db.write() as session:  # type: ignore[attr-defined]
        create_user(session, *ADMIN)
    r = client.post("/api/management/v1/useradm/auth/login", auth=ADMIN)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.text}"}


def _hook_body(url: str = "http://127.0.0.1:9/hook", **extra: object) -> dict:
    http = {"url": url, "secret": SECRET} | extra.pop("http", {})  # type: ignore[operator]
    return {"provider": "webhook", "credentials": {"type": "http", "http": http}} | extra


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (_hook_body("ftp://example.com/x"), 400, "scheme must be http or https"),
        (_hook_body("http://user:pw@example.com/"), 400, "must not carry credentials"),
        (_hook_body("http:///nohost"), 400, "no host"),
        (_hook_body("http://example.com/" + "a" * 2100), 422, "at most 2048"),
        (_hook_body(events=["device-exploded"]), 400, "unknown event 'device-exploded'"),
        (_hook_body(http={"secret": "not hex"}), 400, "secret: must be hex"),
        (_hook_body(http={"secret": "abcd"}), 400, "16 to 256 bytes"),
        (_hook_body(provider="iot-hub"), 422, "provider"),
        (_hook_body(colour="blue"), 422, "colour"),
    ],
)
def test_bad_webhooks_are_refused_in_one_line(client, admin, body, status, message):
    r = client.post(IOT, json=body, headers=admin)
    assert r.status_code == status, r.text
    assert message in r.json()["error"] and "\n" not in r.json()["error"]


def test_at_most_twenty_webhooks_and_secrets_never_come_back(client, admin):
    for _ in range(webhooks.MAX_WEBHOOKS):
        assert client.post(IOT, json=_hook_body(), headers=admin).status_code == 201
    r = client.post(IOT, json=_hook_body(), headers=admin)
    assert r.status_code == 409 and "20 webhooks already" in r.json()["error"]
    listed = client.get(IOT, headers=admin)
    assert SECRET not in listed.text and listed.json()[0]["credentials"]["http"]["secret_set"]
    assert client.delete(f"{IOT}/{listed.json()[0]['id']}", headers=admin).status_code == 204
    assert client.get(f"{IOT}/{listed.json()[0]['id']}", headers=admin).status_code == 404


def test_private_addresses_can_be_refused(settings):
    with _client(settings, webhook_allow_private=False) as client:
        headers = login(client)
        r = client.post(IOT, json=_hook_body("http://127.0.0.1:8080/"), headers=headers)
        assert r.status_code == 400
        assert "127.0.0.1 is 127.0.0.1, not a public address" in r.json()["error"]


def test_two_server_processes_deliver_each_event_once(tmp_path: Path, database_url, receiver):
    with live_server(tmp_path, database_url=database_url, workers=2) as server:
        r = server.api.post(IOT, json=_hook_body(receiver.url))
        assert r.status_code == 201, r.text
        devices = 20
        for i in range(devices):
            device = make_device(httpx.Client(base_url=server.url), f"pair-{i}")  # type: ignore[arg-type]
            server.preauthorize(device.identity, pubkey_pem(device.key))
            # a new connection each time: either worker takes it, and emits there
            assert device.authenticate().status_code == 200
        events = receiver.wait(lambda got: len(got) >= 2 * devices, timeout=60)
        time.sleep(2.5)  # two more polls of each loop: nothing comes twice
        events = receiver.events()
        assert len(events) == 2 * devices
        assert len({e["id"] for e in events}) == 2 * devices
        assert sorted({e["type"] for e in events}) == [
            "device-provisioned",
            "device-status-changed",
        ]
