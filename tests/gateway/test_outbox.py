"""Outbox storage and the sender's ack bookkeeping (real SQLite files)."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.outbox import Outbox
from gateway.sender import OutboxSender
from tests.gateway.support import wait_until


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_append_assigns_seq_and_event_id_in_order(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    events = [ob.append(f"t/{i}", {"i": i}, session=3) for i in range(5)]
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert len({e.event_id for e in events}) == 5
    rows = ob.pending_after(0, 10)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    stored = json.loads(rows[2].payload)
    assert (stored["seq"], stored["event_id"], stored["data"]) == (3, str(events[2].event_id), {"i": 2})
    assert [r.seq for r in ob.pending_after(3, 10)] == [4, 5]
    assert json.loads(rows[0].payload_for(4))["historical"] is True
    assert rows[0].payload_for(3) == rows[0].payload


def test_survives_reopen_and_seq_never_reused(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    ob.append_many([("t", {"n": n}) for n in range(3)], session=1)
    ob.delete([1, 2, 3])
    ob.append("t", {"n": 3}, session=1)
    ob.close()
    again = Outbox(tmp_path / "o.db")
    assert again.depth == 1 and [r.seq for r in again.pending_after(0, 10)] == [4]
    again.delete([4])
    again.close()
    third = Outbox(tmp_path / "o.db")
    assert third.depth == 0
    assert third.append("t", {}, session=2).seq == 5


def test_bounds_drop_oldest_and_count(tmp_path: Path) -> None:
    clock = Clock()
    ob = Outbox(tmp_path / "o.db", max_events=3, max_age_days=1, clock=clock)
    for n in range(5):
        ob.append("t", {"n": n}, session=1)
    assert [r.seq for r in ob.pending_after(0, 10)] == [3, 4, 5]
    assert ob.stats().dropped_overflow == 2
    clock.now += 86400 + 1
    ob.append("t", {"n": 5}, session=1)  # overflow drops seq 3 first
    assert ob.prune_expired() == 2
    stats = ob.stats()
    assert (stats.depth, stats.dropped_overflow, stats.dropped_expired, stats.dropped) == (1, 3, 2, 5)
    ob.close()
    assert Outbox(tmp_path / "o.db").stats().dropped == 5, "the counter is persisted"


class Link:
    """The sender's view of MQTT: records publishes, returns mids (acks are sent by the test)."""

    def __init__(self) -> None:
        self.connected = True
        self.published: list[tuple[int, int]] = []  # (mid, seq)
        self.mid = 0

    def publish(self, topic: str, payload: bytes) -> int | None:
        if not self.connected:
            return None
        self.mid += 1
        self.published.append((self.mid, json.loads(payload)["seq"]))
        return self.mid


def _sender(ob: Outbox, link: Link, window: int = 4) -> OutboxSender:
    return OutboxSender(ob, link.publish, session=lambda: 1, may_send=lambda: link.connected, window=window)


def test_sender_deletes_only_after_ack_and_replays_after_reconnect(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    for n in range(6):
        ob.append("t", {"n": n}, session=1)
    link = Link()
    sender = _sender(ob, link, window=4)
    sender.start()
    try:
        wait_until(lambda: len(link.published) == 4)  # the window bounds what is in flight
        assert [s for _, s in link.published] == [1, 2, 3, 4]
        assert ob.depth == 6, "nothing is deleted before its PUBACK"
        sender.on_publish(1)
        sender.on_publish(2)
        wait_until(lambda: ob.depth == 4 and len(link.published) == 6)
        assert [s for _, s in link.published[4:]] == [5, 6]
        # connection lost with 3..6 in flight: they are pending again; old acks are void
        link.connected = False
        sender.connection_lost()
        sender.on_publish(3)
        link.connected = True
        sender.wake()
        wait_until(lambda: len(link.published) == 10)
        assert [s for _, s in link.published[6:]] == [3, 4, 5, 6]
        assert ob.depth == 4
        for mid, _ in link.published[6:]:
            sender.on_publish(mid)
        wait_until(lambda: ob.depth == 0)
    finally:
        sender.stop()


def test_sender_ack_arriving_before_mid_is_recorded(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    ob.append("t", {}, session=1)
    link = Link()
    sender = _sender(ob, link)
    fast = link.publish

    def publish_and_ack_at_once(topic: str, payload: bytes) -> int | None:
        mid = fast(topic, payload)
        assert mid is not None
        sender.on_publish(mid)  # the PUBACK beats publish() returning
        return mid

    sender._publish = publish_and_ack_at_once
    sender.start()
    try:
        wait_until(lambda: ob.depth == 0)
    finally:
        sender.stop()


def test_sender_refills_by_chunks_while_busy_and_loses_no_wakeup(tmp_path: Path) -> None:
    """With rows in flight, new events and single acks do not wake the sender; ``ack_batch`` acks
    (or the last one) do — and every row is still sent once and deleted only after its ack."""
    ob = Outbox(tmp_path / "o.db")
    for n in range(10):
        ob.append("t", {"n": n}, session=1)
    link = Link()
    sender = OutboxSender(ob, link.publish, session=lambda: 1, may_send=lambda: link.connected, window=8,
                          ack_batch=3)
    sender.start()
    try:
        wait_until(lambda: len(link.published) == 8)
        sender.on_publish(link.published[0][0])
        sender.on_publish(link.published[1][0])
        ob.append("t", {"n": 10}, session=1)
        sender.wake()  # busy: the acks will wake it
        import time

        time.sleep(0.2)
        assert len(link.published) == 8, "two acks (< ack_batch) do not refill the window"
        assert ob.depth == 11, "acked rows wait for the chunk; nothing unacked is deleted"
        sender.on_publish(link.published[2][0])  # the third ack: a chunk
        wait_until(lambda: len(link.published) == 11 and ob.depth == 8)
        for mid, _ in list(link.published[3:]):
            sender.on_publish(mid)
        wait_until(lambda: ob.depth == 0)
        assert [s for _, s in link.published] == list(range(1, 12))
    finally:
        sender.stop()


# ---------------------------------------------------------------- group commit, tail, broker limits


def test_group_commit_every_caller_returns_only_once_its_own_row_is_in_the_file(tmp_path: Path) -> None:
    """Appends queued while another commit runs share the next commit; each caller, the moment its
    append returns, finds its row through a separate connection to the file."""
    import sqlite3
    import threading

    ob = Outbox(tmp_path / "o.db")
    commits: list[int] = []
    real = ob._commit_group

    def counting(group):  # type: ignore[no-untyped-def]
        commits.append(len(group))
        return real(group)

    ob._commit_group = counting  # type: ignore[method-assign]
    found: dict[int, bool] = {}
    errors: list[BaseException] = []

    def produce(k: int) -> None:
        try:
            event = ob.append(f"t/{k}", {"k": k}, session=1)
            other = sqlite3.connect(tmp_path / "o.db")  # another reader of the file, not our connection
            try:
                row = other.execute("SELECT payload FROM outbox WHERE seq = ?", (event.seq,)).fetchone()
            finally:
                other.close()
            found[k] = row is not None and json.loads(row[0])["data"] == {"k": k}
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(6)]
    with ob._lock:  # a commit "in progress": every producer queues behind it
        for t in threads:
            t.start()
        wait_until(lambda: len(ob._waiting) == 6)
        assert found == {}, "nobody returns before its commit"
    for t in threads:
        t.join(5)
    assert errors == [] and found == {k: True for k in range(6)}
    assert commits == [6], "the six queued appends shared one commit"
    assert sorted(r.seq for r in ob.pending_after(0, 10)) == [1, 2, 3, 4, 5, 6]
    for k in range(6, 9):  # a lone producer still commits alone, at once
        ob.append("t", {"k": k}, session=1)
    assert commits == [6, 1, 1, 1]


def test_an_event_the_contract_refuses_fails_alone_in_its_group(tmp_path: Path) -> None:
    import pytest
    from pydantic import ValidationError

    ob = Outbox(tmp_path / "o.db")
    with pytest.raises(ValidationError):
        ob.append("t", {"k": 1}, session=-1)
    assert ob.append("t", {"k": 2}, session=1).seq == 1, "no seq was used up by the refused event"


def test_rows_served_from_the_tail_are_the_rows_in_the_file(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    for n in range(10):
        ob.append("t", {"n": n}, session=1)
    ob.delete([1, 2, 5])
    from_tail = ob.pending_after(0, 100)
    ob._tail.clear()
    ob._tail_from = ob.stats().last_seq + 1  # force the file
    from_file = ob.pending_after(0, 100)
    assert [(r.seq, r.topic, r.payload, r.session) for r in from_tail] == \
        [(r.seq, r.topic, r.payload, r.session) for r in from_file]
    assert [r.seq for r in from_file] == [3, 4, 6, 7, 8, 9, 10]
    assert [r.seq for r in ob.pending_after(6, 2)] == [7, 8]
    reopened = Outbox(tmp_path / "o.db")  # a new process: the tail is empty, everything from the file
    assert [r.seq for r in reopened.pending_after(0, 100)] == [3, 4, 6, 7, 8, 9, 10]


def test_sender_window_follows_the_brokers_receive_maximum(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    link = Link()
    sender = _sender(ob, link, window=256)
    assert (sender.window, sender.ack_batch) == (256, 128)
    sender.broker_limits(20)  # MQTT 5 broker advertising Receive Maximum 20 (Mosquitto's default)
    assert (sender.window, sender.ack_batch) == (20, 10)
    sender.broker_limits(None)  # 3.1.1, or nothing advertised: the configured window
    assert sender.window == 256
    sender.broker_limits(65_535)
    assert sender.window == 256
    for n in range(30):
        ob.append("t", {"n": n}, session=1)
    sender.broker_limits(20)
    sender.start()
    try:
        wait_until(lambda: len(link.published) == 20)
        import time

        time.sleep(0.1)
        assert len(link.published) == 20, "never more in flight than the broker accepts"
    finally:
        sender.stop()
