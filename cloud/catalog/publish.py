"""Publishing a store's price list and its weighed-goods PLU list to its gateways.

The price list is the bus contract's :class:`~protocols.bus.sales.PriceList`: a full replace with a
``version``, published **retained, QoS 1** on ``…/gw/pricelist`` of every gateway of the store, so a
gateway that is offline now gets it when it reconnects and the store sells from its SQLite copy
while the cloud is down. The gateway ignores a version not above the one it has, so the version
kept here (``catalog_publications``) only grows, and it is bumped while the row is locked and the
publish is done under that lock: two publishers of one store cannot put an older list on the
broker after a newer one.

The PLU list (:class:`~protocols.bus.sales.PluList`, ``…/gw/plulist``, retained, QoS 1) is built
with the price list from the same rows — every weighed product with a PLU — and published right
after it to each gateway with the **same version**, under the same lock and rules; the gateway
keeps the newest and uploads it to the store's label scales, so they label offline too. It is
published even when empty (a store whose weighed goods all went: the scales' list is replaced).

What a store sells *now*: every active product (not a semi-finished product) with a price whose
``valid_from`` is not after ``now``; the VAT kind is resolved for the store's local date (the VAT
table has effective dates); barcodes that stand for another unit (an ITF-14 box) are left out so
a box scanned at the till is not sold at the piece price.

When to publish: on demand (``POST /catalog/stores/{id}/publish``, always a new version) and from
the periodic task, which picks stores where a price row took effect, or was added, since the
list was last built (:func:`stores_due`) and publishes only when the content really changed.

Confirmation: contract v1 has no acknowledgement from the gateway's checkout, so a publish is
``published`` when the gateway was online as the broker took the retained message and
``published_not_confirmed`` when it was offline (the broker keeps it for the gateway).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import paho.mqtt.client as mqtt
from pydantic import BaseModel
from sqlalchemy import JSON, BigInteger, UniqueConstraint, and_, exists, func, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker
from sqlmodel import Field, Session, SQLModel, col, select

from cloud.base import UtcDateTime, utcnow
from cloud.bus.mqtt import KEEPALIVE_S, guarded, new_client, parse_mqtt_url, probe_protocol, set_nodelay
from cloud.catalog.models import Barcode, MarkingType, Price, Product, ProductKind, VatRate
from cloud.config import CloudSettings
from cloud.db import unit_of_work
from cloud.errors import Conflict, NotFound, Unavailable
from cloud.registry.models import Gateway, GatewayStatus, Store
from cloud.tenancy.models import Tenant
from protocols.bus import GatewayAddress, encode
from protocols.bus.sales import PluItem, PluList, PriceItem, PriceList, plulist_topic, pricelist_topic

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 5.0
NAME_MAX = 128  # PriceItem.name

# Catalog VAT kinds (``products.vat_kind``, ``vat_rates.kind``) → the fiscal kind of the rate in force.
_FISCAL_BY_KIND = {"zero": "vat0", "none": "none"}
_FISCAL_BY_RATE_BP = {0: "vat0", 500: "vat5", 700: "vat7", 1000: "vat10", 1800: "vat_general",
                      2000: "vat_general", 2200: "vat_general"}
_FISCAL_KINDS = {"vat_general", "vat_general_calc", "vat10", "vat10_calc", "vat0", "none", "vat5", "vat5_calc",
                 "vat7", "vat7_calc"}

# The weight-label layout the PLU list announces (the cloud has no per-store layout yet): 22 PPPPP WWWWW C.
WEIGHT_BARCODE_PREFIX = "22"
WEIGHT_BARCODE_ITEM_DIGITS = 5


class PublishStatus:
    PUBLISHED = "published"
    NOT_CONFIRMED = "published_not_confirmed"


# ---------------------------------------------------------------- table


class CatalogPublication(SQLModel, table=True):
    """The last price list published to a store: its version (only grows) and what it was built from."""

    __tablename__ = "catalog_publications"
    __table_args__ = (UniqueConstraint("store_id"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id", index=True)
    store_id: int = Field(foreign_key="stores.id")
    version: int = Field(default=0, sa_type=BigInteger)
    digest: str = Field(default="", max_length=64)
    """SHA-256 of the items (not of ``ts``/``version``): an unchanged list is not published again."""
    items: int = 0
    built_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    """The clock the list was last built at: prices with ``valid_from`` after it have not been seen."""
    last_price_id: int = Field(default=0, sa_type=BigInteger)
    """The highest ``prices.id`` of the store when the list was last built (a new row is a change)."""
    published_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    gateways: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    """Per gateway of the last publish: id, code, topic, status."""


# ---------------------------------------------------------------- API shapes


class PluEntry(BaseModel):
    """One weighed product for the label scales (the schema the PLU list needs on the bus)."""

    plu: int
    product_id: str
    name: str
    price_per_kg: int
    """Kopecks per kg."""
    shelf_life_days: int | None
    barcode_prefix: str = WEIGHT_BARCODE_PREFIX
    item_digits: int = WEIGHT_BARCODE_ITEM_DIGITS
    measure: str = "weight"
    """``2X PPPPP WWWWW C``: prefix, PLU as the item code, weight in grams, EAN-13 check digit."""
    item_code: int = 0
    """What the label's barcode carries after the prefix (the PLU itself in this layout)."""

    def to_bus(self) -> PluItem:
        """The bus item published on ``…/gw/plulist`` (raises ``ValueError`` for what the contract refuses)."""
        return PluItem(plu=self.plu, product_id=self.product_id, name=self.name, price_per_kg=self.price_per_kg,
                       shelf_life_days=self.shelf_life_days, item_code=self.item_code,
                       barcode_prefix=self.barcode_prefix)


class Skipped(BaseModel):
    product_id: int
    reason: str


class GatewayPublish(BaseModel):
    gateway_id: int
    code: str
    topic: str
    status: str
    plu_topic: str | None = None
    """``…/gw/plulist`` of the gateway (``None`` in publications made before the PLU list was published)."""
    plu_items: int | None = None
    """PLUs in the list published with the price list (``None``: not published, see ``plu_topic``)."""


class PublishResult(BaseModel):
    store_id: int
    version: int
    published: bool
    """False when nothing changed since the last version (the periodic task); the version is then the current one."""
    items: int
    plu_items: int
    gateways: list[GatewayPublish] = []
    published_count: int = 0
    not_confirmed_count: int = 0
    skipped: list[Skipped] = []
    published_at: datetime | None = None


class CatalogPreview(BaseModel):
    store_id: int
    at: datetime
    local_date: date
    version: int
    """The last published version (0: never published)."""
    items: list[PriceItem]
    plu: list[PluEntry]
    skipped: list[Skipped]


# ---------------------------------------------------------------- building the lists


@dataclass
class StoreCatalog:
    items: list[PriceItem] = field(default_factory=list)
    plu: list[PluEntry] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    last_price_id: int = 0

    def digest(self) -> str:
        body = {"items": [i.model_dump(mode="json") for i in self.items],
                "plu": [p.model_dump(mode="json") for p in self.plu]}
        return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def local_date(store: Store, now: datetime) -> date:
    """The store's business date at ``now`` (its time zone; Moscow when the zone is unknown)."""
    try:
        zone = ZoneInfo(store.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("store %s: unknown time zone %r, using Europe/Moscow", store.id, store.timezone)
        zone = ZoneInfo("Europe/Moscow")
    return now.astimezone(zone).date()


def _vat_resolver(session: Session, on: date) -> dict[str, int | None]:
    """Catalog VAT kind → basis points in force on ``on`` (``None``: not subject to VAT)."""
    current: dict[str, VatRate] = {}
    for row in session.exec(select(VatRate).where(col(VatRate.valid_from) <= on).order_by(col(VatRate.valid_from))):
        current[row.kind] = row
    return {kind: row.rate_bp for kind, row in current.items()}


def fiscal_vat(vat_kind: str, rates: dict[str, int | None]) -> str | None:
    """The fiscal register's VAT kind of a product, or ``None`` when it cannot be told."""
    if vat_kind in _FISCAL_KINDS:
        return vat_kind
    if vat_kind in rates:
        bp = rates[vat_kind]
        return "none" if bp is None else _FISCAL_BY_RATE_BP.get(bp)
    return _FISCAL_BY_KIND.get(vat_kind)


def build_catalog(session: Session, tenant_id: int, store: Store, now: datetime) -> StoreCatalog:
    """The price list and PLU list of ``store`` at ``now`` (sorted, so equal content digests equal)."""
    assert store.id is not None
    latest = (
        select(Price.product_id, func.max(Price.valid_from).label("valid_from"))
        .where(Price.tenant_id == tenant_id, Price.store_id == store.id, col(Price.valid_from) <= now)
        .group_by(col(Price.product_id))
        .subquery()
    )
    rows = session.exec(
        select(Product, Price.price_kop)
        .join(Price, Price.product_id == Product.id)  # type: ignore[arg-type]
        .join(latest, and_(latest.c.product_id == Price.product_id, latest.c.valid_from == Price.valid_from))
        .where(Price.store_id == store.id, Product.tenant_id == tenant_id, col(Product.active).is_(True),
               Product.kind != ProductKind.SEMI_FINISHED.value)
        .order_by(col(Product.id))
    ).all()
    ids = [p.id for p, _ in rows]
    codes: dict[int, list[str]] = {}
    if ids:
        for bc in session.exec(select(Barcode).where(col(Barcode.product_id).in_(ids)).order_by(col(Barcode.id))):
            if bc.unit is None:  # a barcode of another unit (a box) is not a till barcode
                codes.setdefault(bc.product_id, []).append(bc.code)
    rates = _vat_resolver(session, local_date(store, now))
    out = StoreCatalog()
    out.last_price_id = session.exec(
        select(func.coalesce(func.max(Price.id), 0)).where(Price.store_id == store.id)
    ).one() or 0
    for product, price_kop in rows:
        assert product.id is not None
        vat = fiscal_vat(product.vat_kind, rates)
        if vat is None:
            out.skipped.append(Skipped(product_id=product.id, reason=f"ставка НДС «{product.vat_kind}» не определена"))
            continue
        weighed = product.weighed or product.base_unit == "kg"
        try:
            item = PriceItem(
                product_id=str(product.id), name=product.name[:NAME_MAX], price=price_kop, vat=vat,
                measure="kg" if weighed else "piece", barcodes=tuple(codes.get(product.id, ())),
                plu=product.plu, marked=product.marking != MarkingType.NONE.value,
            )
        except ValueError as exc:  # pydantic: a value the contract refuses
            out.skipped.append(Skipped(product_id=product.id, reason=str(exc).splitlines()[0]))
            continue
        out.items.append(item)
        if product.weighed and product.plu is not None:
            entry = PluEntry(plu=product.plu, product_id=str(product.id), name=item.name, price_per_kg=price_kop,
                             shelf_life_days=product.shelf_life_days, item_code=product.plu)
            try:
                entry.to_bus()
            except ValueError as exc:  # sold at the till, but not labelled on the scales
                reason = str(exc).splitlines()[0]
                out.skipped.append(Skipped(product_id=product.id, reason=f"не попал в список ПЛУ: {reason}"))
                continue
            out.plu.append(entry)
    out.plu.sort(key=lambda p: p.plu)
    return out


def preview(session: Session, tenant_id: int, store_id: int, now: datetime | None = None) -> CatalogPreview:
    store = _store(session, tenant_id, store_id)
    now = now or utcnow()
    catalog = build_catalog(session, tenant_id, store, now)
    pub = session.exec(select(CatalogPublication).where(CatalogPublication.store_id == store_id)).first()
    return CatalogPreview(store_id=store_id, at=now, local_date=local_date(store, now),
                          version=pub.version if pub else 0, items=catalog.items, plu=catalog.plu,
                          skipped=catalog.skipped)


def publication(session: Session, tenant_id: int, store_id: int) -> PublishResult:
    """The last publish of a store (version 0 and no gateways when never published)."""
    _store(session, tenant_id, store_id)
    pub = session.exec(select(CatalogPublication).where(CatalogPublication.store_id == store_id)).first()
    if pub is None:
        return PublishResult(store_id=store_id, version=0, published=False, items=0, plu_items=0)
    gws = [GatewayPublish.model_validate(g) for g in pub.gateways]
    plu_items = next((g.plu_items for g in gws if g.plu_items is not None), 0)
    return PublishResult(
        store_id=store_id, version=pub.version, published=pub.published_at is not None, items=pub.items,
        plu_items=plu_items,
        gateways=gws, published_count=len(gws),
        not_confirmed_count=sum(g.status == PublishStatus.NOT_CONFIRMED for g in gws), published_at=pub.published_at,
    )


# ---------------------------------------------------------------- MQTT


class RetainedPublisher:
    """A short-lived MQTT connection that publishes retained QoS 1 messages and waits for each PUBACK."""

    def __init__(self, settings: CloudSettings) -> None:
        self.settings = settings
        self.endpoint = parse_mqtt_url(settings.mqtt_url, settings.mqtt_username, settings.mqtt_password)
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()

    def connect(self) -> RetainedPublisher:
        client_id = f"{self.settings.shared_group}-catalog-{self.settings.instance_id}-{uuid.uuid4().hex[:8]}"
        client = new_client(self.endpoint, client_id, probe_protocol(self.endpoint))

        def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
            if not reason_code.is_failure:
                set_nodelay(c)
                self._connected.set()

        client.on_connect = guarded("catalog.on_connect")(on_connect)
        try:
            client.connect(self.endpoint.host, self.endpoint.port, KEEPALIVE_S)
        except OSError as exc:
            raise Unavailable(f"брокер MQTT недоступен: {exc}", code="bus_unavailable") from exc
        client.loop_start()
        self._client = client
        if not self._connected.wait(CONNECT_TIMEOUT_S):
            self.close()
            raise Unavailable("брокер MQTT не принял подключение", code="bus_unavailable")
        return self

    def publish(self, topic: str, payload: bytes) -> None:
        client = self._client
        if client is None or not client.is_connected():
            raise Unavailable("брокер MQTT недоступен, повторите публикацию", code="bus_unavailable")
        info = client.publish(topic, payload, qos=1, retain=True)
        try:
            info.wait_for_publish(PUBLISH_TIMEOUT_S)
        except (RuntimeError, ValueError) as exc:
            raise Unavailable(f"{topic} не опубликован: {exc}", code="bus_unavailable") from exc
        if not info.is_published():
            raise Unavailable(f"брокер MQTT не подтвердил {topic}", code="bus_unavailable")

    def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None


@contextmanager
def publisher(settings: CloudSettings) -> Iterator[RetainedPublisher]:
    pub = RetainedPublisher(settings).connect()
    try:
        yield pub
    finally:
        pub.close()


# ---------------------------------------------------------------- publishing


def _store(session: Session, tenant_id: int, store_id: int) -> Store:
    store = session.exec(select(Store).where(Store.id == store_id, Store.tenant_id == tenant_id)).first()
    if store is None:
        raise NotFound(f"магазин {store_id} не найден", code="store_not_found")
    return store


def _locked_publication(session: Session, tenant_id: int, store_id: int) -> CatalogPublication:
    """The store's row, locked for this transaction (created on first use)."""
    query = select(CatalogPublication).where(CatalogPublication.store_id == store_id).with_for_update()
    row = session.exec(query).first()
    if row is not None:
        return row
    savepoint = session.begin_nested()
    try:
        session.add(CatalogPublication(tenant_id=tenant_id, store_id=store_id))
        session.flush()
        savepoint.commit()
    except IntegrityError:
        savepoint.rollback()  # another publisher created it first
    return session.exec(query.execution_options(populate_existing=True)).one()


def publish_store(session: Session, settings: CloudSettings, pub: RetainedPublisher, tenant_id: int, store_id: int,
                  now: datetime, *, force: bool) -> PublishResult:
    """Build and publish one store's list in ``session``'s transaction (committed here).

    ``force``: publish a new version even when the content did not change (on demand).
    """
    store = _store(session, tenant_id, store_id)
    gateways = session.exec(select(Gateway).where(Gateway.store_id == store_id).order_by(col(Gateway.id))).all()
    if not gateways:
        raise Conflict(f"у магазина {store.code} нет шлюза — прайс-лист некуда публиковать", code="no_gateway")
    row = _locked_publication(session, tenant_id, store_id)
    catalog = build_catalog(session, tenant_id, store, now)
    digest = catalog.digest()
    result = PublishResult(store_id=store_id, version=row.version, published=False, items=len(catalog.items),
                           plu_items=len(catalog.plu), skipped=catalog.skipped)
    row.built_at, row.last_price_id = now, catalog.last_price_id
    if not force and row.version > 0 and digest == row.digest:
        session.add(row)
        session.commit()
        return result
    version = row.version + 1
    payload = encode(PriceList(version=version, items=tuple(catalog.items)))
    plu_payload = encode(PluList(version=version, items=tuple(p.to_bus() for p in catalog.plu)))
    tenant = session.get_one(Tenant, tenant_id)
    published: list[GatewayPublish] = []
    for gw in gateways:
        assert gw.id is not None
        address = GatewayAddress(tenant.slug, store.code, gw.code, settings.bus_root)
        topic, plu_topic = pricelist_topic(address), plulist_topic(address)
        pub.publish(topic, payload)
        pub.publish(plu_topic, plu_payload)
        online = gw.online and gw.status == GatewayStatus.ONLINE.value
        published.append(GatewayPublish(gateway_id=gw.id, code=gw.code, topic=topic,
                                        status=PublishStatus.PUBLISHED if online else PublishStatus.NOT_CONFIRMED,
                                        plu_topic=plu_topic, plu_items=len(catalog.plu)))
    row.version, row.digest, row.items, row.published_at = version, digest, len(catalog.items), now
    row.gateways = [g.model_dump() for g in published]
    session.add(row)
    session.commit()  # the lock is held until here: no older version can follow this one on the broker
    log.info("price list and PLU list v%s of store %s published to %d gateway(s) (%d items, %d PLUs)", version,
             store_id, len(published), len(catalog.items), len(catalog.plu))
    return result.model_copy(update={
        "version": version, "published": True, "gateways": published, "published_count": len(published),
        "not_confirmed_count": sum(g.status == PublishStatus.NOT_CONFIRMED for g in published), "published_at": now,
    })


def publish_now(factory: sessionmaker[Session], settings: CloudSettings, tenant_id: int, store_id: int,
                now: datetime | None = None) -> PublishResult:
    """On demand: a new version of the store's list, published to each of its gateways."""
    with unit_of_work(factory) as session:
        _store(session, tenant_id, store_id)  # 404 before touching the broker
    with publisher(settings) as pub, unit_of_work(factory) as session:
        return publish_store(session, settings, pub, tenant_id, store_id, now or utcnow(), force=True)


def stores_due(session: Session, now: datetime, tenant_id: int | None = None) -> list[tuple[int, int]]:
    """(tenant id, store id) of stores with a gateway whose effective prices may have changed since the
    last build: never built, a price took effect after it, or a price row was added since."""
    P, C = Price, CatalogPublication
    changed = or_(col(C.id).is_(None), col(P.valid_from) > col(C.built_at), col(P.id) > col(C.last_price_id))
    has_gateway = exists().where(col(Gateway.store_id) == col(P.store_id))
    query = (
        select(P.tenant_id, P.store_id).distinct()
        .select_from(P)
        .outerjoin(C, C.store_id == P.store_id)  # type: ignore[arg-type]
        .where(col(P.valid_from) <= now, changed, has_gateway)
    )
    if tenant_id is not None:
        query = query.where(P.tenant_id == tenant_id)
    rows = session.exec(query.order_by(col(P.store_id))).all()
    return [(t, s) for t, s in rows]


def publish_due(factory: sessionmaker[Session], settings: CloudSettings, now: datetime | None = None,
                tenant_id: int | None = None) -> list[PublishResult]:
    """The periodic run: rebuild every store found by :func:`stores_due` (of one tenant when given),
    publish those whose list changed."""
    now = now or utcnow()
    with unit_of_work(factory) as session:
        due = stores_due(session, now, tenant_id)
    if not due:
        return []
    results: list[PublishResult] = []
    with publisher(settings) as pub:
        for tenant_id, store_id in due:
            try:
                with unit_of_work(factory) as session:
                    results.append(publish_store(session, settings, pub, tenant_id, store_id, now, force=False))
            except Unavailable:
                raise  # the broker: the next run retries every store
            except Exception:
                log.exception("price list of store %s not published; retrying on the next run", store_id)
    return results
