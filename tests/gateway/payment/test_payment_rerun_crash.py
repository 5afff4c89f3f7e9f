"""A crash during a re-run is recovered like a first run, and the recovered reply reaches the cloud
without a retry even though recovery ends before the gateway could connect.

Real gateway processes, real crash points, the UPOS simulator as the terminal. The last restart
reaches the broker through a TCP gate the test keeps closed until the journal shows the recovered
outcome: the reply can only arrive because the gateway held it and published it on connect.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gateway.devices.payment.const import CRASH_AFTER_TERMINAL, CRASH_BEFORE_TERMINAL
from tests.gateway.payment.support import GatewayProcess, charges, terminal_device, write_config
from tests.gateway.payment.test_payment_crash import Store, _dies_mid_purchase
from tests.support.backends import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Gate:
    """A TCP forwarder to the broker that refuses connections until :meth:`open`."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 1883)
        self.port = free_port()
        self._server: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._closed = False

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def open(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        assert self._server is not None
        while not self._closed:
            try:
                client, _ = self._server.accept()
                broker = socket.create_connection(self.upstream)
            except OSError:
                return
            self._sockets += [client, broker]
            threading.Thread(target=self._pump, args=(client, broker), daemon=True).start()
            threading.Thread(target=self._pump, args=(broker, client), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._closed = True
        for s in [*self._sockets, *([self._server] if self._server else [])]:
            try:
                s.close()
            except OSError:
                pass


@pytest.fixture
def store(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str) -> Iterator[Store]:
    s = Store(tmp_path, mqtt_url, bus_root, bus_tenant)
    try:
        yield s
    finally:
        s.close()


def _row(store: Store, command_id: str) -> tuple[float | None, int]:
    with sqlite3.connect(f"file:{store.config.parent / 'data' / 'journal.db'}?mode=ro", uri=True) as db:
        row = db.execute("SELECT finished_at, attempts FROM commands WHERE command_id = ?", (command_id,)).fetchone()
    assert row is not None
    return row[0], row[1]


def test_crash_during_a_rerun_is_recovered_and_its_reply_published_without_a_retry(
    store: Store, tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str
) -> None:
    # 1. died before the terminal; the next start proves nothing happened: not_performed
    _dies_mid_purchase(store, CRASH_BEFORE_TERMINAL, "sale-r")
    gw = store.start(crash_point=CRASH_AFTER_TERMINAL)
    stored = store.journaled("sale-r")
    assert (stored["status"], stored["code"]) == ("failed", "not_performed"), stored
    # 2. the cloud repeats: the row is reopened (running, attempt 2), the terminal charges, the gateway dies
    mark = store.bus.send("pay", "sale-r", {"amount": 5_000})
    assert gw.wait(30) == 137, gw.output()[-2000:]
    accepted = [r["message"] for r in store.bus.replies("sale-r", mark) if r["status"] == "accepted"]
    assert accepted == ["running again: not_performed"]
    assert len(charges(store.model, "sale-r")) == 1
    assert _row(store, "sale-r") == (None, 2), "the re-run is journaled running: a crash goes to recover"
    mark = len(store.watcher.messages)  # the not_performed of step 1 (held until connect) is before this

    # 3. restart while the broker is unreachable: recovery asks the terminal before any connect
    gate = Gate(mqtt_url)
    try:
        write_config(store.config, mqtt_url=gate.url, root=bus_root, tenant=bus_tenant,
                     device=terminal_device(store.workdir, store.model.path))
        proc = GatewayProcess(store.config)
        store.processes.append(proc)
        recovered = store.journaled("sale-r")
        assert recovered["status"] == "done" and recovered["result"]["source"] == "control_tape", recovered
        assert not [r for r in store.bus.replies("sale-r", mark) if r["status"] == "done"]
        gate.open()
        # no retry sent: the held reply goes out on connect
        done = store.bus.final("sale-r", mark, timeout=30)
        assert done["status"] == "done" and done["result"]["rrn"] == charges(store.model, "sale-r")[0]
        assert [r["status"] for r in store.bus.replies("sale-r", mark)].count("done") == 1
        assert len(charges(store.model, "sale-r")) == 1
        ping = store.bus.ping("ping-r")["result"]["commands"]
        assert (ping["replies_held"], ping["replies_dropped"]) == (0, 0)
    finally:
        for p in store.processes:
            p.kill()
        gate.close()
