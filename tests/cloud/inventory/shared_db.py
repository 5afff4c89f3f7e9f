"""One migrated database per test session for the inventory/catalog/marking tests.

Every test gets its own tenant (a unique slug), and everything the services read is filtered by
tenant, so tests cannot see each other's rows; creating and migrating a database per test would
cost ~3 s each. PostgreSQL when the machine has one; ``VITRINA_TEST_CLOUD_SQLITE=1`` forces SQLite.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from cloud.db import upgrade
from tests.support.backends import RUN_ID


@pytest.fixture(scope="session")
def shared_db_url(database_server_url: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if database_server_url is None or os.environ.get("VITRINA_TEST_CLOUD_SQLITE") == "1":
        url = f"sqlite:///{tmp_path_factory.mktemp('inventory') / 'vitrina.db'}"
        upgrade(url)
        yield url
        return
    import psycopg

    name = f"vitrina_inv_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    admin = database_server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = database_server_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(shared_db_url: str) -> str:
    return shared_db_url
