"""End-to-end through the HTTP API: auth, tenant isolation on every read and on commands, health."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from cloud.app import create_app
from cloud.db import unit_of_work
from cloud.tenancy.service import create_tenant
from protocols.bus import DeviceInfo, DeviceKind, GatewayAddress, GatewayState, Inventory
from protocols.bus import Event as BusEvent
from tests.cloud.test_services import feed

ROOT = "vitrina"


@pytest.fixture
def api(settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"bus_root": ROOT}))) as client:
        yield client


def seed(sessions, slug: str) -> None:
    a = GatewayAddress(slug, "store1", "gw1", ROOT)
    feed(sessions, a.state(), GatewayState(online=True, session=1))
    feed(sessions, a.inventory(), Inventory(session=1, devices=(
        DeviceInfo(id="scale1", kind=DeviceKind.SCALE, driver="massak"),
        DeviceInfo(id="kkt1", kind=DeviceKind.FISCAL_REGISTER, driver="shtrih"))))
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(5):
        feed(sessions, a.event("scale1" if i % 2 else "kkt1", "weight" if i % 2 else "receipt"),
             BusEvent(session=1, seq=i, ts=base + timedelta(minutes=i), data={"i": i}))


@pytest.fixture
def two_tenants(sessions, tenant) -> tuple[dict[str, str], dict[str, str]]:
    """Headers of tenant A (the test's) and tenant B, each with the same store/gateway/device codes."""
    with unit_of_work(sessions) as session:
        other, _u, other_token = create_tenant(session, tenant[1] + "b", "Другая сеть")
    seed(sessions, tenant[1])
    seed(sessions, other.slug)
    return {"Authorization": f"Bearer {tenant[2]}"}, {"Authorization": f"Bearer {other_token}"}


def test_requests_without_or_with_a_bad_token_get_401(api) -> None:
    r = api.get("/api/v1/stores")
    assert r.status_code == 401 and r.json()["code"] == "missing_token"
    r = api.get("/api/v1/stores", headers={"Authorization": "Bearer vtk_nope"})
    assert r.status_code == 401 and r.json()["code"] == "invalid_token"
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_every_list_shows_only_the_callers_tenant(api, two_tenants) -> None:
    a, b = two_tenants
    for path in ("/api/v1/stores", "/api/v1/gateways", "/api/v1/devices"):
        ra, rb = api.get(path, headers=a).json(), api.get(path, headers=b).json()
        assert len(ra) == len(rb) > 0, path
        assert not {x["id"] for x in ra} & {x["id"] for x in rb}, path
    ea = api.get("/api/v1/events", headers=a).json()["items"]
    eb = api.get("/api/v1/events", headers=b).json()["items"]
    assert len(ea) == len(eb) == 5 and not {e["id"] for e in ea} & {e["id"] for e in eb}


def test_another_tenants_ids_are_404_on_every_get_and_on_commands(api, two_tenants) -> None:
    a, b = two_tenants
    gw_b = api.get("/api/v1/gateways", headers=b).json()[0]["id"]
    dev_b = api.get("/api/v1/devices", headers=b).json()[0]["id"]
    store_b = api.get("/api/v1/stores", headers=b).json()[0]["id"]
    assert api.get(f"/api/v1/gateways/{gw_b}", headers=a).status_code == 404
    assert api.get(f"/api/v1/devices/{dev_b}", headers=a).status_code == 404
    assert api.get(f"/api/v1/gateways/{gw_b}", headers=b).status_code == 200
    # filters by another tenant's ids return nothing rather than its rows
    assert api.get(f"/api/v1/devices?gateway_id={gw_b}", headers=a).json() == []
    assert api.get(f"/api/v1/devices?store_id={store_b}", headers=a).json() == []
    assert api.get(f"/api/v1/gateways?store_id={store_b}", headers=a).json() == []
    assert api.get(f"/api/v1/events?device_id={dev_b}", headers=a).json()["items"] == []
    r = api.post(f"/api/v1/devices/{dev_b}/commands", json={"action": "print"}, headers=a)
    assert r.status_code == 404 and r.json()["code"] == "device_not_found"
    r = api.post(f"/api/v1/gateways/{gw_b}/commands", json={"action": "ping"}, headers=a)
    assert r.status_code == 404 and r.json()["code"] == "gateway_not_found"
    assert api.get("/api/v1/commands/whatever", headers=a).status_code == 404


def test_device_filters_and_event_pagination_newest_first(api, two_tenants) -> None:
    a, _ = two_tenants
    scales = api.get("/api/v1/devices?kind=scale", headers=a).json()
    assert [d["code"] for d in scales] == ["scale1"]
    page1 = api.get("/api/v1/events?limit=2", headers=a).json()
    page2 = api.get("/api/v1/events?limit=2&offset=2", headers=a).json()
    seqs = [e["seq"] for e in page1["items"] + page2["items"]]
    assert seqs == [4, 3, 2, 1]
    only = api.get(f"/api/v1/events?device_id={scales[0]['id']}&type=weight", headers=a).json()["items"]
    assert {e["seq"] for e in only} == {1, 3}
    since = api.get("/api/v1/events", params={"since": "2026-01-01T00:03:00Z"}, headers=a).json()["items"]
    assert [e["seq"] for e in since] == [4, 3]
    r = api.get("/api/v1/events", params={"since": "2026-01-01T00:03:00"}, headers=a)
    assert r.status_code == 422 and r.json()["code"] == "naive_datetime"
    assert api.get("/api/v1/events?limit=0", headers=a).json()["code"] == "validation_error"


def test_healthz_reports_db_and_mqtt_without_auth(api) -> None:
    from tests.cloud.conftest import wait_for

    wait_for(lambda: api.get("/healthz").json()["mqtt"])
    assert api.get("/healthz").json() == {"status": "ok", "db": True, "mqtt": True}


def test_token_cache_honours_revocation_at_once_here_and_within_the_ttl_elsewhere(api, sessions, tenant,
                                                                                 monkeypatch) -> None:
    """A token resolved once is served from the process's cache: revoked in this process → 401 at
    once; revoked by another process (the row changed behind the cache) → 401 once the TTL passed."""
    from sqlmodel import select

    from cloud.tenancy import service as tenancy
    from cloud.tenancy.models import ApiToken

    now = [1000.0]
    cache = tenancy.TokenCache(ttl_s=5.0, clock=lambda: now[0])
    monkeypatch.setattr(tenancy, "TOKEN_CACHE", cache)
    headers = {"Authorization": f"Bearer {tenant[2]}"}
    assert api.get("/api/v1/stores", headers=headers).status_code == 200
    assert cache.get(tenant[2]) is not None, "a valid token is cached"
    # another process revokes it: written straight to the row, this process's cache does not know
    with unit_of_work(sessions) as session:
        row = session.exec(select(ApiToken).where(ApiToken.token_hash == tenancy.hash_token(tenant[2]))).one()
        row.revoked_at = datetime.now(UTC)
        session.add(row)
        session.commit()
    now[0] += 4.9
    assert api.get("/api/v1/stores", headers=headers).status_code == 200, "still within the TTL"
    now[0] += 0.2
    r = api.get("/api/v1/stores", headers=headers)
    assert r.status_code == 401 and r.json()["code"] == "token_revoked"
    assert cache.get(tenant[2]) is None, "a revoked token is never cached"
    # revoked in this process: refused at once, even with a fresh cache entry
    with unit_of_work(sessions) as session:
        _t, _u, token2 = create_tenant(session, tenant[1] + "c", "Третья сеть")
    headers2 = {"Authorization": f"Bearer {token2}"}
    assert api.get("/api/v1/stores", headers=headers2).status_code == 200 and cache.get(token2) is not None
    with unit_of_work(sessions) as session:
        tenancy.revoke_token(session, token2)
        session.commit()
    r = api.get("/api/v1/stores", headers=headers2)
    assert r.status_code == 401 and r.json()["code"] == "token_revoked"


def test_cached_callers_are_fresh_detached_copies(sessions, tenant) -> None:
    from sqlalchemy import inspect as sa_inspect

    from cloud.tenancy import service as tenancy

    cache = tenancy.TokenCache()
    user, t = tenancy.authenticate_cached(sessions, tenant[2], cache)
    (u1, t1), (u2, _t2) = cache.get(tenant[2]), cache.get(tenant[2])  # type: ignore[misc]
    assert u1 is not u2 and (u1.id, t1.id, t1.slug) == (user.id, t.id, tenant[1])
    assert sa_inspect(u1).detached and sa_inspect(t1).detached


def test_a_database_that_cannot_be_reached_is_503_with_retry_after() -> None:
    """Not a bare 500: the request may be retried once the database is back."""
    from cloud.config import CloudSettings
    from cloud.tenancy.service import TOKEN_CACHE

    TOKEN_CACHE.clear()
    settings = CloudSettings(database_url="postgresql+psycopg://postgres@127.0.0.1:1/vitrina", redis_url=None)
    with TestClient(create_app(settings, with_bus=False)) as client:
        r = client.get("/api/v1/stores", headers={"Authorization": "Bearer vtk_whatever"})
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "database_unavailable" and r.headers["Retry-After"] == "5"
        assert "база данных недоступна" in r.json()["detail"]
        assert client.get("/healthz").json()["status"] == "down"
