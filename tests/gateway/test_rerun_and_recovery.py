"""The core under the families, without a broker: journaled re-runs, repeats during a recovery,
replies held while the link is down, status reported by a binding, the data dir given to bindings."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import BaseModel

from drivers.errors import DeviceUnavailable
from gateway.config import DeviceConfig
from gateway.devices.base import Action, CommandContext, DeviceBinding, Outcome, StatusSnapshot
from gateway.devices.label_printer import LabelPrinterBinding
from gateway.devices.supervisor import DeviceSupervisor
from gateway.devices.worker import DeviceWorker, RecoveryJob
from gateway.dispatcher import Dispatcher, Incoming
from gateway.journal import Journal, StoredReply, args_hash
from gateway.targets import GatewayTarget
from protocols.bus import DeviceKind, DeviceState, GatewayAddress, Reply, ReplyStatus
from tests.gateway.support import command, wait_until

ADDRESS = GatewayAddress("t1", "s1", "gw1", "vt")
DEVICE = "dev1"


class PrintArgs(BaseModel):
    copies: int = 1


class FakeBinding(DeviceBinding):
    """A device whose ``print`` blocks until released; ``paper_out`` failures may re-run."""

    kind = DeviceKind.LABEL_PRINTER
    recover_needs_device = True

    def __init__(self, config: DeviceConfig) -> None:
        super().__init__(config, lambda event, data: None)
        self.release = threading.Event()
        self.calls: list[CommandContext] = []
        self.recovered: list[StoredReply] = []
        self.reachable = True
        self.fault = ""

    def actions(self) -> dict[str, Action]:
        return {"print": Action("print", PrintArgs, self._print, side_effect=True, context=True,
                                rerun_on=frozenset({"paper_out"}))}

    def _print(self, args: PrintArgs, context: CommandContext) -> dict[str, Any]:
        self.calls.append(context)
        self.report_status(DeviceState.BUSY, f"печать {context.command_id}")
        try:
            assert self.release.wait(5)
        finally:
            self.report_status(None)
        return {"copies": args.copies}

    def recover(self, entry: StoredReply) -> Outcome:
        self.recovered.append(entry)
        return Outcome.done({"recovered": True})

    def open(self) -> None:
        if not self.reachable:
            raise DeviceUnavailable("нет связи")

    def close(self) -> None:
        return None

    @property
    def poll_interval(self) -> float | None:
        return 0.02

    def poll(self) -> None:
        if not self.reachable:
            raise DeviceUnavailable("нет связи")
        self.report_status(DeviceState.ERROR if self.fault else None, self.fault)


class BarrierJournal(Journal):
    """Lets the first two lookups meet, so two repeats both see the stored failure before either acts."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.barrier: threading.Barrier | None = None

    def lookup(self, command_id: str) -> StoredReply | None:
        found = super().lookup(command_id)
        barrier = self.barrier
        if barrier is not None:
            self.barrier = None if barrier.n_waiting == barrier.parties - 1 else barrier
            barrier.wait(5)
        return found


class Rig:
    def __init__(self, tmp_path: Path, journal: Journal | None = None, *, reachable: bool = True) -> None:
        self.journal = journal or Journal(tmp_path / "journal.db")
        self.binding = FakeBinding(DeviceConfig(id=DEVICE, kind=DeviceKind.LABEL_PRINTER, driver="x", url="/dev/x"))
        self.binding.reachable = reachable
        self.statuses: list[StatusSnapshot] = []
        self.worker = DeviceWorker(self.binding, on_status=lambda d, s: self.statuses.append(s),
                                   backoff_min=0.02, backoff_max=0.05)
        self.connected = True
        self.session = 1
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.dispatcher = Dispatcher(
            ADDRESS, self.journal, devices=lambda d: self.worker if d == DEVICE else None,
            gateway=GatewayTarget({}), known_devices=lambda: [DEVICE], publish_reply=self._publish,
            clear_retained=lambda topic: None, session=lambda: self.session,
        )

    def _publish(self, topic: str, payload: bytes, correlation: bytes | None) -> bool:
        if not self.connected:
            return False
        with self.lock:
            self.published.append((topic, json.loads(payload)))
        return True

    def send(self, command_id: str, **args: Any) -> None:
        self.dispatcher.handle(Incoming(ADDRESS.command(DEVICE, "print"), command(command_id, args=args)))

    def replies(self, command_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for t, r in self.published if t == ADDRESS.reply(command_id)]

    def final(self, command_id: str) -> dict[str, Any]:
        found = wait_until(lambda: [r for r in self.replies(command_id) if r["status"] in ("done", "failed")])
        return dict(found[-1])

    def close(self) -> None:
        self.binding.release.set()
        self.worker.stop()
        self.dispatcher.stop()
        self.journal.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    r.worker.start()
    try:
        yield r
    finally:
        r.close()


def _failed(command_id: str, code: str) -> Reply:
    return Reply(session=1, command_id=command_id, status=ReplyStatus.FAILED, code=code, message="нет бумаги")


def _stored_failure(journal: Journal, command_id: str, code: str = "paper_out", copies: int = 2) -> None:
    journal.begin(command_id, DEVICE, "print", args_hash({"copies": copies}), args={"copies": copies})
    journal.finish(command_id, _failed(command_id, code))


def test_two_repeats_at_once_exactly_one_reruns(tmp_path: Path) -> None:
    journal = BarrierJournal(tmp_path / "journal.db")
    r = Rig(tmp_path, journal)
    r.worker.start()
    try:
        _stored_failure(journal, "c1")
        journal.barrier = threading.Barrier(2)
        threads = [threading.Thread(target=r.send, args=("c1",), kwargs={"copies": 2}) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
        accepted = sorted(x["message"] for x in r.replies("c1") if x["status"] == "accepted")
        assert accepted == ["already running", "running again: paper_out"]
        wait_until(lambda: len(r.binding.calls) == 1)
        assert r.binding.calls[0].previous is not None and r.binding.calls[0].previous.code == "paper_out"
        entry = journal.lookup("c1")
        assert entry is not None and entry.running and entry.attempts == 2
        assert entry.previous is not None and entry.previous.code == "paper_out"
        r.binding.release.set()
        assert r.final("c1")["status"] == "done"
        assert len(r.binding.calls) == 1, "the loser never ran"
        stored = journal.lookup("c1")
        assert stored is not None and stored.status is ReplyStatus.DONE and stored.attempts == 2
    finally:
        r.close()


def test_a_crash_during_a_rerun_is_recovered_like_a_first_run(tmp_path: Path) -> None:
    first = Rig(tmp_path)
    first.worker.start()
    _stored_failure(first.journal, "c2")
    first.send("c2", copies=2)
    wait_until(lambda: first.binding.calls)
    # the gateway dies here, mid re-run: nothing more is written (the worker is left blocked)
    first.dispatcher.stop()
    second = Rig(tmp_path, Journal(tmp_path / "journal.db"))
    try:
        [entry] = second.journal.running()
        assert (entry.command_id, entry.attempts) == ("c2", 2)
        assert entry.previous is not None and entry.previous.code == "paper_out"
        second.worker.start()
        second.worker.submit(RecoveryJob(entry, lambda o: second.dispatcher.finish_recovered(entry, o)))
        final = second.final("c2")
        assert (final["status"], final["result"]) == ("done", {"recovered": True})
        assert [e.command_id for e in second.binding.recovered] == ["c2"] and second.binding.calls == []
    finally:
        second.close()
        first.binding.release.set()
        first.worker.stop()


def test_a_repeat_while_the_recovery_waits_for_the_device_is_unknown_outcome(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db")
    journal.begin("c3", DEVICE, "print", args_hash({"copies": 1}), args={"copies": 1})
    r = Rig(tmp_path, journal, reachable=False)  # restarted after a crash; the device is off
    try:
        [entry] = journal.running()
        r.worker.submit(RecoveryJob(entry, lambda o: r.dispatcher.finish_recovered(entry, o)))
        r.worker.start()
        wait_until(lambda: r.worker.recovery_pending("c3"))
        r.send("c3", copies=1)
        [repeat] = r.replies("c3")
        assert (repeat["status"], repeat["code"]) == ("failed", "unknown_outcome")
        assert "не отвечает после перезапуска шлюза" in repeat["message"] and repeat["result"]["recovering"]
        still = journal.lookup("c3")
        assert still is not None and still.running, "the row stays running: nothing was decided"
        r.binding.reachable = True  # the device is back: the recovery runs and its outcome goes out
        wait_until(lambda: [x for x in r.replies("c3") if x["status"] == "done"])
        assert journal.running() == [] and r.binding.calls == []
    finally:
        r.close()


def test_a_repeat_while_the_recovery_runs_with_the_device_is_accepted(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db")
    journal.begin("c4", DEVICE, "print", args_hash({}), args={})
    r = Rig(tmp_path, journal)
    try:
        r.send("c4")  # the recovery is queued, not waiting for an unreachable device
        assert [(x["status"], x["message"]) for x in r.replies("c4")] == [("accepted", "already running")]
    finally:
        r.close()


def test_final_replies_are_held_while_the_link_is_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.dispatcher.MAX_HELD_REPLIES", 2)
    journal = Journal(tmp_path / "journal.db")
    for cid in ("r1", "r2", "r3"):
        journal.begin(cid, DEVICE, "print", args_hash({}), args={})
    r = Rig(tmp_path, journal)
    r.connected = False  # recovery at startup runs before the first connect
    r.dispatcher.start()
    try:
        for entry in journal.running():
            r.dispatcher.finish_recovered(entry, Outcome.done({"id": entry.command_id}))
        assert journal.running() == [] and r.published == []
        assert (r.dispatcher.replies_held, r.dispatcher.replies_dropped) == (2, 1)
        r.connected, r.session = True, 2
        r.dispatcher.connected()
        wait_until(lambda: r.dispatcher.replies_held == 0)
        got = [(t.rsplit("/", 1)[1], p["status"], p["session"]) for t, p in r.published]
        assert got == [("r2", "done", 2), ("r3", "done", 2)], "oldest dropped, the rest in order, new session"
        # r1 was dropped from memory only: its retry is answered from the journal
        r.send("r1")
        assert r.replies("r1")[-1]["status"] == "duplicate"
    finally:
        r.close()


def test_binding_reports_error_and_busy_published_on_change(rig: Rig) -> None:
    wait_until(lambda: rig.worker.snapshot().state == "online")
    rig.binding.fault = "нет бумаги"
    wait_until(lambda: rig.statuses[-1].state == "error")
    assert rig.statuses[-1].detail == "нет бумаги" and rig.worker.state is DeviceState.ONLINE
    count = len(rig.statuses)
    time.sleep(0.15)  # several polls report the same: nothing republished
    assert len(rig.statuses) == count
    rig.binding.fault = ""
    wait_until(lambda: rig.statuses[-1].state == "online")
    rig.send("b1")
    wait_until(lambda: rig.statuses[-1].state == "busy")  # published from inside the running command
    assert rig.statuses[-1].detail == "печать b1"
    rig.binding.release.set()
    assert rig.final("b1")["status"] == "done"
    wait_until(lambda: rig.statuses[-1].state == "online")
    rig.binding.fault = "открыта крышка"
    wait_until(lambda: rig.statuses[-1].state == "error")
    rig.binding.reachable = False  # the next poll fails: offline wins, the reported error is forgotten
    wait_until(lambda: rig.statuses[-1].state == "offline")
    assert rig.binding.reported_status is None


def test_bindings_get_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    explicit = tmp_path / "elsewhere.db"
    devices = [
        DeviceConfig(id="kkt1", kind=DeviceKind.FISCAL_REGISTER, driver="shtrih", url="/dev/ttyS0"),
        DeviceConfig(id="lp1", kind=DeviceKind.LABEL_PRINTER, driver="zpl", url="tcp://127.0.0.1:9100"),
        DeviceConfig(id="lp2", kind=DeviceKind.LABEL_PRINTER, driver="zpl", url="tcp://127.0.0.1:9100",
                     options={"state_file": str(explicit)}),
        DeviceConfig(id="lp3", kind=DeviceKind.LABEL_PRINTER, driver="zpl", url="tcp://127.0.0.1:9100"),
    ]
    legacy = Path("var") / "label_printer-lp3.db"  # left by a gateway that did not pass the data dir
    legacy.parent.mkdir()
    legacy.write_bytes(b"")
    sup = DeviceSupervisor(emit=lambda d, e, x: None, on_status=lambda d, s: None, data_dir=data)
    sup.load(devices)
    files = {w.id: cast(Any, w.binding).state_file for w in sup.workers()}
    assert files == {"kkt1": data / "fiscal-kkt1.db", "lp1": data / "label_printer-lp1.db", "lp2": explicit,
                     "lp3": legacy}
    alone = LabelPrinterBinding(devices[1], lambda e, d: None)
    assert alone.state_file == Path("var") / "label_printer-lp1.db", "built alone: the old default"
