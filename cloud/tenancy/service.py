"""Creating tenants and resolving bearer tokens.

The plaintext token exists only in the return value of :func:`create_tenant` / :func:`issue_token`;
the database keeps its SHA-256 hash and a short prefix to recognise it in lists.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from cloud.base import utcnow
from cloud.errors import Conflict, Invalid, Unauthorized
from cloud.tenancy.models import ApiToken, Role, Tenant, User
from protocols.bus import TopicError, check_id

TOKEN_PREFIX = "vtk_"


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
