"""Shared FastAPI dependencies as ``Annotated`` aliases (``SessionDep``, ``CurrentUser``, ``TenantId``).

Every business router takes ``TenantId`` and passes it to its service, which filters every query
by it: the tenant boundary is in the services, and the router cannot forget it.

Dependencies that do not block are ``async def``: FastAPI runs a plain ``def`` dependency in its
thread pool, a hop per dependency per request. ``get_caller`` answers from the process's token
cache (:data:`cloud.tenancy.service.TOKEN_CACHE`: revocation honoured within 5 s across
processes, at once in the revoking one) and goes to the thread pool only on a miss.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from cloud.config import CloudSettings
from cloud.errors import Unauthorized
from cloud.tenancy import service as tenancy
from cloud.tenancy.models import Tenant, User

_bearer = HTTPBearer(auto_error=False, description="API token issued by `vitrina cloud tenant-create`")


async def _factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.sessions
    return factory


def get_session(factory: Annotated[sessionmaker[Session], Depends(_factory)]) -> Iterator[Session]:
    """A session for one request; anything not committed is rolled back at the end."""
    session = factory()
    try:
        yield session
    finally:
        session.close()  # rolls back anything not committed


SessionDep = Annotated[Session, Depends(get_session)]
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(_factory)]


async def get_settings_dep(request: Request) -> CloudSettings:
    settings: CloudSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[CloudSettings, Depends(get_settings_dep)]


@dataclass(frozen=True)
class Caller:
    user: User
    tenant: Tenant

    @property
    def tenant_id(self) -> int:
        assert self.tenant.id is not None
        return self.tenant.id


async def get_caller(
    factory: SessionFactoryDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("нужен заголовок Authorization: Bearer <токен>", code="missing_token")
    token = credentials.credentials
    hit = tenancy.TOKEN_CACHE.get(token)
    if hit is None:
        hit = await run_in_threadpool(tenancy.authenticate_cached, factory, token)
    user, tenant = hit
    return Caller(user=user, tenant=tenant)


CurrentCaller = Annotated[Caller, Depends(get_caller)]


async def get_current_user(caller: CurrentCaller) -> User:
    return caller.user


async def get_tenant_id(caller: CurrentCaller) -> int:
    return caller.tenant_id


CurrentUser = Annotated[User, Depends(get_current_user)]
TenantId = Annotated[int, Depends(get_tenant_id)]
