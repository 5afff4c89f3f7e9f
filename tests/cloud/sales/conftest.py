from __future__ import annotations

import pytest

from tests.cloud.inventory.helpers import World, make_world
from tests.cloud.inventory.shared_db import db_url, shared_db_url
from tests.cloud.sales.helpers import Lane, make_lane

__all__ = ["db_url", "shared_db_url"]


@pytest.fixture
def world(sessions, tenant) -> World:
    return make_world(sessions, tenant[0])


@pytest.fixture
def lane(world: World) -> Lane:
    return make_lane(world)
