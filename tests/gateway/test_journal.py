from __future__ import annotations

import sqlite3
import threading
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


def test_running_rows_are_fsynced_and_final_replies_are_not(tmp_path: Path) -> None:
    """The row written before the device is touched commits with ``synchronous=FULL``; the final
    reply commits with NORMAL (in the WAL, flushed by the next durable commit); a re-run's and a
    resolution's compare-and-set are durable again."""
    j = Journal(tmp_path / "j.db")
    seen: list[str] = []
    j._conn.set_trace_callback(seen.append)

    def mode_of_each_commit() -> list[str]:
        mode, modes = "FULL", []
        for statement in seen:
            if statement.startswith("PRAGMA synchronous="):
                mode = statement.split("=", 1)[1]
            elif statement == "COMMIT":
                modes.append(mode)
        seen.clear()
        return modes

    h = args_hash({})
    assert j.begin("c1", "pay1", "purchase", h) is None
    assert mode_of_each_commit() == ["FULL"]
    failed = Reply(session=1, command_id="c1", status=ReplyStatus.FAILED, code="declined")
    j.finish("c1", failed)
    assert mode_of_each_commit() == ["NORMAL"]
    assert j.reopen("c1", ReplyStatus.FAILED, "declined")
    assert mode_of_each_commit() == ["FULL"]
    j.finish("c1", _done("c1"))
    assert j.begin("c2", "pay1", "purchase", h) is None
    assert mode_of_each_commit() == ["NORMAL", "FULL"]
    j.close()
    stored = Journal(tmp_path / "j.db").lookup("c1")
    assert stored is not None and stored.status is ReplyStatus.DONE and stored.attempts == 2


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


def _failed(cid: str, code: str) -> Reply:
    return Reply(session=1, command_id=cid, status=ReplyStatus.FAILED, code=code, message="nothing happened")


def test_reopen_is_a_compare_and_set_on_the_stored_failure(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    h = args_hash({})
    j.begin("c1", "pos1", "pay", h)
    assert not j.reopen("c1", ReplyStatus.FAILED, "not_performed"), "a running row is never reopened"
    assert not j.reopen("nosuch", ReplyStatus.FAILED, "not_performed")
    j.finish("c1", _failed("c1", "not_performed"))
    assert not j.reopen("c1", ReplyStatus.FAILED, "declined"), "only the failure it was read with"
    assert j.reopen("c1", ReplyStatus.FAILED, "not_performed")
    entry = j.lookup("c1")
    assert entry is not None and entry.running and entry.attempts == 2
    assert entry.previous is not None and entry.previous.code == "not_performed"
    assert [e.command_id for e in j.running()] == ["c1"], "a crash now goes to recover"
    assert not j.reopen("c1", ReplyStatus.FAILED, "not_performed"), "a second repeat finds it running"
    j.finish("c1", _done("c1"))
    assert not j.reopen("c1", ReplyStatus.FAILED, "not_performed")
    j.close()
    again = Journal(tmp_path / "j.db")
    done = again.lookup("c1")
    assert done is not None and done.status is ReplyStatus.DONE and done.attempts == 2 and again.running() == []


def test_concurrent_reopens_exactly_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    first = Journal(path)
    first.begin("c1", "pos1", "pay", args_hash({}))
    first.finish("c1", _failed("c1", "not_performed"))
    journals = [Journal(path) for _ in range(6)]  # separate connections, as separate processes would be
    start = threading.Barrier(len(journals))
    wins: list[bool] = []

    def race(j: Journal) -> None:
        start.wait(5)
        wins.append(j.reopen("c1", ReplyStatus.FAILED, "not_performed"))

    threads = [threading.Thread(target=race, args=(j,)) for j in journals]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(wins) == [False] * 5 + [True]
    entry = first.lookup("c1")
    assert entry is not None and entry.running and entry.attempts == 2


def test_a_journal_of_an_older_gateway_gets_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE commands (command_id TEXT PRIMARY KEY, device TEXT NOT NULL, action TEXT NOT NULL,"
            " args_hash TEXT NOT NULL, reply_to TEXT, args TEXT NOT NULL DEFAULT '{}', started_at REAL NOT NULL,"
            " finished_at REAL, reply TEXT)"
        )
        db.execute("INSERT INTO commands VALUES ('c1', 'pos1', 'pay', 'h', NULL, '{}', 1.0, 2.0, ?)",
                   (_failed("c1", "not_performed").model_dump_json(),))
    j = Journal(path)
    entry = j.lookup("c1")
    assert entry is not None and entry.attempts == 1 and entry.previous is None
    assert j.reopen("c1", ReplyStatus.FAILED, "not_performed")
    assert (j.lookup("c1") or entry).attempts == 2


def test_resolve_replaces_only_a_stored_unknown_outcome(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    h = args_hash({"amount": 100})
    settled = Reply(session=1, command_id="p1", status=ReplyStatus.DONE, result={"source": "person"})
    assert not j.resolve("p1", settled), "no such command"
    assert j.begin("p1", "pos1", "pay", h) is None
    assert not j.resolve("p1", settled), "a running command is never resolved"
    unknown = _failed("p1", "unknown_outcome")
    j.finish("p1", unknown)
    with pytest.raises(ValueError):
        j.resolve("p1", Reply(session=1, command_id="p1", status=ReplyStatus.ACCEPTED))
    with pytest.raises(ValueError):
        j.resolve("p1", settled.model_copy(update={"command_id": "other"}))
    assert j.resolve("p1", settled)
    j.close()
    again = Journal(tmp_path / "j.db")  # durable
    stored = again.lookup("p1")
    assert stored is not None and stored.reply == settled and stored.previous == unknown
    assert not again.resolve("p1", _failed("p1", "not_performed")), "only once: the first resolution stands"
    assert again.lookup("p1").reply == settled  # type: ignore[union-attr]
    assert again.begin("p2", "pos1", "pay", h) is None
    again.finish("p2", _failed("p2", "declined"))
    assert not again.resolve("p2", _failed("p2", "not_performed")), "a known outcome is never replaced"
    assert again.running() == []


def test_concurrent_resolutions_exactly_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    first = Journal(path)
    assert first.begin("p1", "pos1", "pay", args_hash({})) is None
    first.finish("p1", _failed("p1", "unknown_outcome"))
    journals = [first, *(Journal(path) for _ in range(3))]  # separate connections, like the binding's
    barrier = threading.Barrier(len(journals))
    wins: list[tuple[int, bool]] = []

    def resolve(n: int, j: Journal) -> None:
        barrier.wait()
        wins.append((n, j.resolve("p1", _failed("p1", f"resolved_{n}"))))

    threads = [threading.Thread(target=resolve, args=(n, j)) for n, j in enumerate(journals)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [n for n, won in wins if won]
    assert len(winners) == 1
    assert first.lookup("p1").reply.code == f"resolved_{winners[0]}"  # type: ignore[union-attr]
