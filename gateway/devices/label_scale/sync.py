"""The cloud's PLU list on the gateway, and on every label scale of the store.

The cloud publishes the weighed goods retained on ``…/gw/plulist`` (:class:`~protocols.bus.sales.PluList`,
a full replace with a ``version`` that only grows). :class:`PluListStore` keeps the newest in SQLite
(``plulist.db`` in the data dir; an older or equal version — a retained message replayed on
reconnect, a late publish — changes nothing), so while the cloud or the internet is down the
scales keep their last table and a scale plugged in later still gets the list.

:class:`PluSync` puts the stored list on the label scales:

* when a newer version is stored — on every label scale that is online;
* when a label scale comes online (first open, replugged, restarted by ``rescan``) — on that one,
  since someone may have edited its table while the gateway could not see it;
* on ``rescan`` — on every label scale that is online.

Each upload is a job on the device's own queue (``DeviceWorker.submit``), so it never interleaves
with a command or a poll on the wire, and runs the family's own ``upload_plu`` path: the driver
reads every PLU back and writes only what differs, so uploading the same list again writes nothing.
A PLU the scale or the protocol refuses fails alone. The outcome goes to the cloud as a
``plu_synced`` event of the scale (through the outbox): the version, the counts
(``written``/``unchanged``/``failed``) and the failed PLUs with their reasons — or, when the link
broke (or the scale went away before its turn), ``complete: false`` with the error; a scale that
went offline gets the whole list again when it is back.

These uploads are not cloud commands: they are not journaled (the store is the record, and the
upload is idempotent on the scale), and a scale that is offline is simply synced when it returns.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from gateway.devices.base import Outcome, StatusSnapshot
from gateway.devices.label_scale import const
from gateway.devices.label_scale.actions import PluItem as ScalePlu
from gateway.devices.label_scale.actions import UploadPluArgs, upload_summary
from gateway.devices.label_scale.binding import LabelScaleBinding
from gateway.devices.worker import CommandJob, DeviceWorker
from gateway.errors import GatewayError, StorageError
from gateway.sqlite import connect
from protocols.bus import DeviceState, GatewayAddress, PayloadError, ReplyStatus, decode, describe, uuid7
from protocols.bus.sales import PluItem, PluList, plulist_topic

if TYPE_CHECKING:
    from gateway.devices.supervisor import DeviceSupervisor

log = logging.getLogger(__name__)

STORE_FILE = "plulist.db"

_SCHEMA = "CREATE TABLE IF NOT EXISTS plulist (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, doc TEXT NOT NULL);"


class PluListStore:
    """The newest PLU list the gateway has seen (one row). Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn = connect(path, "full")
        try:
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open PLU list {path}: {exc}") from exc

    @property
    def version(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT version FROM plulist WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    def load(self) -> PluList | None:
        with self._lock:
            try:
                row = self._conn.execute("SELECT doc FROM plulist WHERE id = 1").fetchone()
            except sqlite3.Error as exc:
                raise StorageError(f"cannot read PLU list {self.path}: {exc}") from exc
        return PluList.model_validate(json.loads(row[0])) if row else None

    def apply_payload(self, payload: bytes) -> str:
        """A message from ``…/gw/plulist``: ``applied``, ``ignored`` (not newer) or ``invalid``."""
        if not payload:
            return "ignored"  # the retained list being cleared: the scales keep their table
        try:
            plu_list = decode(PluList, payload)
        except PayloadError as exc:
            log.error("PLU list refused: %s", exc.message)
            return "invalid"
        return "applied" if self.apply(plu_list) else "ignored"

    def apply(self, plu_list: PluList) -> bool:
        """Replace the list if ``plu_list.version`` is newer; True if it was."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                row = self._conn.execute("SELECT version FROM plulist WHERE id = 1").fetchone()
                current = int(row[0]) if row else 0
                if plu_list.version <= current:
                    self._conn.execute("ROLLBACK")
                    log.info("PLU list v%d ignored: v%d is held", plu_list.version, current)
                    return False
                self._conn.execute(
                    "INSERT INTO plulist (id, version, doc) VALUES (1, ?, ?)"
                    " ON CONFLICT(id) DO UPDATE SET version = excluded.version, doc = excluded.doc",
                    (plu_list.version, plu_list.model_dump_json()),
                )
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise StorageError(f"cannot store PLU list {self.path}: {exc}") from exc
        log.info("PLU list v%d stored: %d PLUs", plu_list.version, len(plu_list.items))
        return True

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class PluSync:
    """Keeps the cloud's PLU list (:class:`PluListStore`) and uploads it to the store's label scales."""

    def __init__(self, data_dir: Path, address: GatewayAddress, devices: DeviceSupervisor) -> None:
        self.topic = plulist_topic(address)
        self.store = PluListStore(data_dir / STORE_FILE)
        self._devices = devices
        self._lock = threading.Lock()
        self._online: dict[str, DeviceWorker] = {}
        self._intake = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plulist")
        """Stores received lists one at a time, in arrival order, off paho's thread."""

    def stop(self) -> None:
        self._intake.shutdown(wait=True, cancel_futures=True)
        self.store.close()

    # Inputs ------------------------------------------------------------------------------------
    def on_plulist(self, payload: bytes) -> None:
        """A (retained) PLU list from the cloud (paho's thread: stored on the intake thread)."""
        try:
            self._intake.submit(self.apply_plulist, payload)
        except RuntimeError:  # stopping
            log.warning("PLU list received while stopping: ignored (the retained copy comes back on connect)")

    def apply_plulist(self, payload: bytes) -> str:
        """Store a payload; a newer list goes to every online label scale. Returns what happened."""
        try:
            outcome = self.store.apply_payload(payload)
        except GatewayError as exc:
            log.error("PLU list not stored: %s", exc.message)
            return "failed"
        if outcome == "applied":
            self.sync_all("version")
        return outcome

    def on_status(self, device_id: str, snapshot: StatusSnapshot) -> None:
        """A device status changed (its worker's thread): a label scale that came online is synced."""
        worker = self._devices.get(device_id)
        if not isinstance(worker, DeviceWorker) or not isinstance(worker.binding, LabelScaleBinding):
            return
        with self._lock:
            if snapshot.state != DeviceState.ONLINE.value:
                self._online.pop(device_id, None)
                return
            if self._online.get(device_id) is worker:
                return  # still the same online spell (only its data changed)
            self._online[device_id] = worker
        self.sync(worker, "online")

    # Uploads -----------------------------------------------------------------------------------
    def sync_all(self, reason: str) -> list[str]:
        """Queue the stored list on every label scale that is online; returns their ids."""
        queued = []
        for worker in self._devices.workers():
            if isinstance(worker.binding, LabelScaleBinding) and worker.is_open and self.sync(worker, reason):
                queued.append(worker.id)
        return queued

    def sync(self, worker: DeviceWorker, reason: str) -> bool:
        """Queue the stored list on ``worker``'s scale (after whatever it is doing); False: no list yet."""
        try:
            plu_list = self.store.load()
        except (GatewayError, ValueError) as exc:
            log.error("label scale %s: stored PLU list unreadable: %s", worker.id, exc)
            return False
        if plu_list is None:
            return False
        refused: list[dict[str, Any]] = []
        items: list[ScalePlu] = []
        for item in plu_list.items:
            try:
                items.append(_scale_plu(item))
            except ValidationError as exc:  # fits the bus but not the family (a price above 32 bits)
                refused.append({"plu": item.plu, "status": "failed", "code": "plu_invalid", "reason": describe(exc)})
        binding = worker.binding
        assert isinstance(binding, LabelScaleBinding)

        def done(outcome: Outcome) -> None:  # the device's thread
            self._report(binding, plu_list.version, reason, refused, outcome)

        if not items:
            done(Outcome.done(upload_summary([])))
            return True
        # Each item was validated on its own; the table has unique PLUs (the bus checked) and may be
        # longer than one command's limit, which only exists to bound what a sender puts in one message.
        args = UploadPluArgs.model_construct(items=items)
        worker.submit(CommandJob(f"plu-sync-{uuid7()}", const.ACTION_UPLOAD_PLU, args, done))
        log.info("label scale %s: PLU list v%d queued (%s, %d PLUs)", worker.id, plu_list.version, reason,
                 len(plu_list.items))
        return True

    def _report(self, binding: LabelScaleBinding, version: int, reason: str, refused: list[dict[str, Any]],
                outcome: Outcome) -> None:
        data: dict[str, Any] = {"version": version, "reason": reason}
        if outcome.status is ReplyStatus.DONE and outcome.result is not None:
            summary = upload_summary([*outcome.result["plus"], *refused])
            data.update({key: summary[key] for key in ("total", "written", "unchanged", "failed", "complete")})
            data["failed_plus"] = [p for p in summary["plus"] if p["status"] == "failed"]
            if summary["complete"]:
                binding.plu_list_version = version
            log.info("label scale %s: PLU list v%d synced (%s): written %d, unchanged %d, failed %d", binding.id,
                     version, reason, summary["written"], summary["unchanged"], summary["failed"])
        else:  # the link broke (or the scale went away before its turn): the whole list again when it is back
            data.update({"complete": False, "error": {"code": outcome.code, "message": outcome.message}})
            log.warning("label scale %s: PLU list v%d not synced: %s", binding.id, version, outcome.message)
        binding.emit(const.EVENT_PLU_SYNCED, data)


def _scale_plu(item: PluItem) -> ScalePlu:
    """A bus PLU as a row of the scale's table (department 1; no shelf life = 0)."""
    return ScalePlu(plu=item.plu, name=item.name, price_per_kg=item.price_per_kg,
                    shelf_life_days=item.shelf_life_days or 0, item_code=item.item_code)
