"""Creating tenants and resolving bearer tokens.

The plaintext token exists only in the return value of :func:`create_tenant` / :func:`issue_token`;
the database keeps its SHA-256 hash and a short prefix to recognise it in lists.

Token cache: an API process remembers a token it resolved (its hash → the user and tenant) for
``TOKEN_CACHE_TTL_S`` (5 s), so a request does not read three tables first. Revocation is
therefore honoured at once in the process that revoked (:func:`revoke_token` forgets the entry)
and within 5 s in every other process; so is any change to the user or tenant row. Only valid
tokens are cached: an invalid or revoked one is looked up every time.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, select

from cloud.base import utcnow
from cloud.errors import Conflict, Invalid, Unauthorized
from cloud.tenancy.models import ApiToken, Role, Tenant, User
from protocols.bus import TopicError, check_id

TOKEN_PREFIX = "vtk_"
TOKEN_CACHE_TTL_S = 5.0
TOKEN_CACHE_MAX = 10_000


class TokenCache:
    """Token hash → (user, tenant) for ``ttl_s`` seconds; thread-safe, bounded (LRU).

    It keeps column values, not ORM objects: every hit builds a fresh detached ``User`` and
    ``Tenant``, so no two requests share an instance a session could attach or change.
    """

    def __init__(self, ttl_s: float = TOKEN_CACHE_TTL_S, max_entries: int = TOKEN_CACHE_MAX,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, dict[str, Any], dict[str, Any]]] = OrderedDict()

    def get(self, token: str) -> tuple[User, Tenant] | None:
        values = self.values(token)
        if values is None:
            return None
        return detached(User, values[0]), detached(Tenant, values[1])

    def values(self, token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The cached user's and tenant's column values (shared: read only), without building
        the rows — what a request that needs only the tenant's id and slug reads."""
        key = hash_token(token)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
        return entry[1], entry[2]

    def put(self, token: str, user: User, tenant: Tenant) -> None:
        if self.ttl_s <= 0:
            return
        entry = (self._clock() + self.ttl_s, user.model_dump(), tenant.model_dump())
        with self._lock:
            self._entries[hash_token(token)] = entry
            self._entries.move_to_end(hash_token(token))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget_hash(self, token_hash: str) -> None:
        with self._lock:
            self._entries.pop(token_hash, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def detached(model: Any, values: dict[str, Any]) -> Any:
    """A new ``model`` row from ``values``, detached ("persistent elsewhere")."""
    obj = model(**values)
    make_transient_to_detached(obj)  # "persistent elsewhere": never INSERTed by accident
    return obj


TOKEN_CACHE = TokenCache()
"""The process's cache (used by ``cloud.deps.get_caller``)."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User) -> str:
    """Add a new token for ``user`` (caller commits) and return its plaintext, shown once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    assert user.id is not None
    session.add(
        ApiToken(tenant_id=user.tenant_id, user_id=user.id, token_hash=hash_token(token), prefix=token[:12])
    )
    return token


def create_tenant(session: Session, slug: str, name: str) -> tuple[Tenant, User, str]:
    """Create a tenant with an owner user and a token; commits; returns the plaintext token once.

    The slug becomes the tenant level of bus topics, so it must be a valid topic level.
    """
    try:
        check_id(slug, "tenant slug")
    except TopicError as exc:
        raise Invalid(exc.message, code="invalid_slug") from exc
    if session.exec(select(Tenant).where(Tenant.slug == slug)).first() is not None:
        raise Conflict(f"арендатор {slug!r} уже существует", code="tenant_exists")
    tenant = Tenant(slug=slug, name=name)
    session.add(tenant)
    session.flush()
    assert tenant.id is not None
    user = User(tenant_id=tenant.id, login="owner", name=name, role=Role.OWNER.value)
    session.add(user)
    session.flush()
    token = issue_token(session, user)
    try:
        session.commit()
    except IntegrityError as exc:  # a concurrent create of the same slug
        session.rollback()
        raise Conflict(f"арендатор {slug!r} уже существует", code="tenant_exists") from exc
    return tenant, user, token


def authenticate_cached(session_factory: Callable[[], Session], token: str,
                        cache: TokenCache | None = None) -> tuple[User, Tenant]:
    """:func:`authenticate` through ``cache`` (the process's by default); see the module doc."""
    cache = TOKEN_CACHE if cache is None else cache
    hit = cache.get(token)
    if hit is not None:
        return hit
    with session_factory() as session:
        user, tenant = authenticate(session, token)
    cache.put(token, user, tenant)
    return user, tenant


def authenticate(session: Session, token: str) -> tuple[User, Tenant]:
    """The user and tenant of a valid, unrevoked token, else :class:`Unauthorized`."""
    row = session.exec(
        select(ApiToken, User, Tenant)
        .join(User, User.id == ApiToken.user_id)  # type: ignore[arg-type]
        .join(Tenant, Tenant.id == ApiToken.tenant_id)  # type: ignore[arg-type]
        .where(ApiToken.token_hash == hash_token(token))
    ).first()
    if row is None:
        raise Unauthorized("неверный токен доступа", code="invalid_token")
    api_token, user, tenant = row
    if api_token.revoked_at is not None:
        raise Unauthorized("токен доступа отозван", code="token_revoked")
    return user, tenant


def revoke_token(session: Session, token: str) -> None:
    """Revoke a token (caller commits); later requests with it get 401."""
    api_token = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
    if api_token is not None and api_token.revoked_at is None:
        api_token.revoked_at = utcnow()
        session.add(api_token)
    # This process stops accepting it now (even before the commit: refusing early is safe);
    # other API processes within TOKEN_CACHE_TTL_S.
    TOKEN_CACHE.forget_hash(hash_token(token))
