"""Migrations create the schema on a fresh SQLite and PostgreSQL database and match the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlmodel import SQLModel

import cloud.models  # noqa: F401
from cloud.db import MIGRATIONS_DIR, alembic_config, current_revision, make_engine, upgrade

TABLES = {"tenants", "users", "api_tokens", "stores", "gateways", "devices", "events", "commands"}


@pytest.fixture(params=["sqlite", "server"])
def empty_url(request: pytest.FixtureRequest, tmp_path, database_server_url: str | None) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nested' / 'dir' / 'v.db'}"
    if database_server_url is None:
        pytest.skip("no PostgreSQL on this machine")
    return request.getfixturevalue("fresh_database_url")


def test_upgrade_fresh_database_creates_every_table_and_matches_models(empty_url: str) -> None:
    assert current_revision(empty_url) is None
    upgrade(empty_url)
    head = ScriptDirectory.from_config(alembic_config(empty_url)).get_current_head()
    assert current_revision(empty_url) == head
    engine = make_engine(empty_url)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
    finally:
        engine.dispose()
    upgrade(empty_url)  # a second upgrade is a no-op
    assert current_revision(empty_url) == head


def test_migrations_are_found_from_any_cwd(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert (MIGRATIONS_DIR / "env.py").is_file()
    url = f"sqlite:///{tmp_path / 'cwd.db'}"
    upgrade(url)
    assert current_revision(url) is not None


def test_plain_postgresql_url_is_rewritten_to_psycopg3() -> None:
    from cloud.db import normalize_url

    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_sqlite_engine_uses_wal_busy_timeout_and_foreign_keys(tmp_path) -> None:
    from sqlalchemy import text

    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10_000
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()
