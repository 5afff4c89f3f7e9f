from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import GatewayConfig
from gateway.journal import Journal, args_hash
from gateway.runtime import Gateway
from protocols.bus import DeviceKind, Reply, ReplyStatus
from tests.gateway.support import BusWatcher, FakeScaleFactory, wait_until


def _done(cid: str) -> Reply:
    return Reply(session=1, command_id=cid, status=ReplyStatus.DONE, result={"net": "1.000"})


def test_begin_finish_duplicate_and_reopen(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    h = args_hash({"a": 1})
    assert j.begin("c1", "scale1", "weigh", h) is None
    running = j.begin("c1", "scale1", "weigh", h)
    assert running is not None and running.running
    j.finish("c1", _done("c1"))
    j.close()
    again = Journal(tmp_path / "j.db")
    stored = again.begin("c1", "scale1", "weigh", h)
    assert stored is not None and stored.status is ReplyStatus.DONE and stored.reply is not None
    assert stored.reply.result == {"net": "1.000"}
    assert again.running() == []
    with pytest.raises(ValueError):
        again.finish("c1", Reply(session=1, command_id="c1", status=ReplyStatus.ACCEPTED))


def test_args_hash_is_order_independent() -> None:
    assert args_hash({"a": 1, "b": [1, 2]}) == args_hash({"b": [1, 2], "a": 1})
    assert args_hash({"a": 1}) != args_hash({"a": 2})


@pytest.mark.integration
def test_running_at_startup_is_finished_as_interrupted(
    gw_config: GatewayConfig, factory: FakeScaleFactory, watcher: BusWatcher
) -> None:
    data = gw_config.resolved_data_dir
    data.mkdir(parents=True)
    j = Journal(data / "journal.db")
    j.begin("crashed-1", "scale1", "tare", args_hash({}), reply_to=None)
    j.begin("crashed-2", "gone", "tare", args_hash({}))
    j.close()
    gw = Gateway(gw_config, factories={DeviceKind.SCALE: factory}).start()
    try:
        wait_until(lambda: gw.journal.running() == [])
        for cid in ("crashed-1", "crashed-2"):
            stored = gw.journal.lookup(cid)
            assert stored is not None and stored.reply is not None
            assert (stored.reply.status, stored.reply.code) == (ReplyStatus.FAILED, "interrupted")
        assert factory.scale.calls.get("tare", 0) == 0, "never re-run blindly"
    finally:
        gw.stop()
