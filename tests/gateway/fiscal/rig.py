"""Fiscal gateway tests: a Shtrih-M simulator on a real pty in the test process, its FN in a file,
and the gateway either in-process or as a ``python -m gateway run`` subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from simulators.fiscal import ShtrihDevice, SimConfig
from simulators.fiscal.device import DOC_RECEIPT
from simulators.link import PtyEndpoint
from tests.gateway.support import BusWatcher, Message, command

ROOT = Path(__file__).resolve().parents[3]
DEVICE = "kkt1"
CASHIER = {"name": "Иванова Анна", "inn": "500100732259"}


def five_items(cash: int = 100_000) -> dict[str, Any]:
    """A 5-item sale (kopecks): 2 × 89.90, 0.734 kg × 459.90, 7.00, 45.00, 150.00 = 719.37 ₽."""
    return {
        "items": [
            {"name": "Молоко 3,2% 1л", "quantity": "2", "price": 8990, "vat": "vat10"},
            {"name": "Сыр Российский весовой", "quantity": "0.734", "price": 45990, "vat": "vat10", "measure": 11},
            {"name": "Пакет-майка", "quantity": 1, "price": 700, "vat": "vat_general"},
            {"name": "Хлеб Бородинский", "quantity": 1, "price": 4500, "vat": "vat10"},
            {"name": "Доставка", "quantity": 1, "price": 15000, "vat": "none", "item_type": 4},
        ],
        "payments": {"cash": cash},
        "cashier": CASHIER,
    }


FIVE_ITEMS_TOTAL = 17980 + 33757 + 700 + 4500 + 15000


class Register:
    """The simulated register: device model, pty endpoint, FN state file and tape."""

    def __init__(self, tmp_path: Path, device: ShtrihDevice | None = None, *, baudrate: int | None = None) -> None:
        self.state_file = tmp_path / "fn.json"
        self.tape_file = tmp_path / "tape.txt"
        self.dev = device or ShtrihDevice(SimConfig(state_file=self.state_file, tape_file=self.tape_file))
        self.endpoint = PtyEndpoint(self.dev, baudrate=baudrate)
        self.url = self.endpoint.start()

    def receipts(self) -> list[Any]:
        """Receipts in the FN, from the state file on disk (the ground truth)."""
        if not self.state_file.exists():
            return []
        docs = json.loads(self.state_file.read_text(encoding="utf-8"))["documents"]
        return [d for d in docs if d["doc_type"] == DOC_RECEIPT]

    def tape(self) -> str:
        return self.tape_file.read_text(encoding="utf-8") if self.tape_file.exists() else ""

    def stop(self) -> None:
        self.endpoint.stop()


def device_options(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {"enq_timeout": 0.3, "attempts": 3, "poll_interval_s": 0.5,
            "state_file": str(tmp_path / "gw" / "fiscal-kkt1.db"), **extra}


def write_config(path: Path, mqtt_url: str, root: str, tenant: str, register_url: str) -> Path:
    opts = device_options(path.parent)
    options = ", ".join(f"{k} = {json.dumps(v)}" for k, v in opts.items())
    path.write_text(
        f'tenant = "{tenant}"\nstore = "s1"\ngateway = "gwf"\nbus_root = "{root}"\n'
        f'data_dir = "{path.parent / "gw"}"\nheartbeat_s = 0\n'
        f'[broker]\nurl = "{mqtt_url}"\nkeepalive = 5\nreconnect_min_s = 0.1\nreconnect_max_s = 0.5\n'
        f"[outbox]\nrequire_cloud_online = false\n"
        f'[[devices]]\nid = "{DEVICE}"\nkind = "fiscal_register"\ndriver = "shtrih"\nurl = "{register_url}"\n'
        f"options = {{ {options} }}\n",
        encoding="utf-8",
    )
    return path


def spawn(config: Path, log: Path, crashpoint: str | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "VITRINA_CRASHPOINT"}
    if crashpoint:
        env["VITRINA_CRASHPOINT"] = crashpoint
    with open(log, "ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(config), "--log-level", "WARNING"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err,
        )


class Bus:
    """The cloud's side for one gateway: commands out, replies, events and statuses in."""

    def __init__(self, watcher: BusWatcher, prefix: str) -> None:
        self.watcher = watcher
        self.prefix = prefix

    def send(self, action: str, command_id: str, args: dict[str, Any]) -> None:
        self.watcher.publish(f"{self.prefix}/dev/{DEVICE}/cmd/{action}", command(command_id, args=args))

    def final(self, command_id: str, status: str | None = None, timeout: float = 15.0, after: int = 0,
              ) -> dict[str, Any]:
        """The first final reply to ``command_id`` (optionally of ``status``) among messages ≥ ``after``."""
        topic = f"{self.prefix}/reply/{command_id}"
        index = {id(m): n for n, m in enumerate(self.watcher.messages)}

        def match(m: Message) -> bool:
            if m.topic != topic or index.get(id(m), len(self.watcher.messages)) < after:
                return False
            s = m.json()["status"]
            return s not in ("accepted", "progress") and (status is None or s == status)

        return self.watcher.wait_for(match, timeout=timeout).json()

    def call(self, action: str, command_id: str, args: dict[str, Any], timeout: float = 15.0) -> dict[str, Any]:
        mark = len(self.watcher.messages)
        self.send(action, command_id, args)
        return self.final(command_id, timeout=timeout, after=mark)

    def events(self, event_type: str) -> list[dict[str, Any]]:
        topic = f"{self.prefix}/dev/{DEVICE}/evt/{event_type}"
        return [m.json() for m in self.watcher.matching(lambda m: m.topic == topic)]

    def wait_online(self, timeout: float = 15.0) -> dict[str, Any]:
        topic = f"{self.prefix}/dev/{DEVICE}/status"
        return self.watcher.wait_for(lambda m: m.topic == topic and m.json()["state"] == "online",
                                     timeout=timeout).json()
