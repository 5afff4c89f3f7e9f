"""Shared FastAPI dependencies as ``Annotated`` aliases (``SessionDep``, ``CurrentUser``, ``TenantId``).

Every business router takes ``TenantId`` and passes it to its service, which filters every query
by it: the tenant boundary is in the services, and the router cannot forget it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from cloud.config import CloudSettings
from cloud.errors import Unauthorized
from cloud.tenancy import service as tenancy
from cloud.tenancy.models import Tenant, User

_bearer = HTTPBearer(auto_error=False, description="API token issued by `vitrina cloud tenant-create`")


def _factory(request: Request) -> sessionmaker[Session]:
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


def get_settings_dep(request: Request) -> CloudSettings:
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


def get_caller(
    factory: SessionFactoryDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("нужен заголовок Authorization: Bearer <токен>", code="missing_token")
    with factory() as session:
        user, tenant = tenancy.authenticate(session, credentials.credentials)
    return Caller(user=user, tenant=tenant)


CurrentCaller = Annotated[Caller, Depends(get_caller)]


def get_current_user(caller: CurrentCaller) -> User:
    return caller.user


def get_tenant_id(caller: CurrentCaller) -> int:
    return caller.tenant_id


CurrentUser = Annotated[User, Depends(get_current_user)]
TenantId = Annotated[int, Depends(get_tenant_id)]
