"""``vitrina up``: the whole store on one machine, on embedded defaults.

Starts, in this order: an in-process MQTT broker (amqtt), the SQLite database migrated to
head, a demo tenant with its API token, the cloud's bus consumer and periodic task runner, a
simulated MT-SICS scale on a pty, one store gateway bound to it, and the cloud API. Ctrl-C
stops them in the reverse order, so the gateway's Will and the cloud's offline state are
published while the broker is still up.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console

from vitrina.ports import choose_port

log = logging.getLogger("vitrina.up")
console = Console()

DEMO_TENANT = "demo"
DEMO_STORE = "store-1"
DEMO_GATEWAY = "gw-1"


def _demo_token(database_url: str, token_file: Path) -> str:
    """The demo tenant's token: created on the first run, kept in ``var/`` for the next ones."""
    from sqlmodel import select

    from cloud.db import session_factory, shared_engine
    from cloud.tenancy.models import Tenant, User
    from cloud.tenancy.service import create_tenant, issue_token

    factory = session_factory(shared_engine(database_url))
    with factory() as session:
        tenant = session.exec(select(Tenant).where(Tenant.slug == DEMO_TENANT)).first()
        if tenant is None:
            _t, _u, token = create_tenant(session, DEMO_TENANT, "Демо-сеть «Витрина»")
        elif token_file.exists():
            return token_file.read_text().strip()
        else:
            user = session.exec(select(User).where(User.tenant_id == tenant.id)).first()
            assert user is not None
            token = issue_token(session, user)
            session.commit()
    token_file.write_text(token + "\n")
    os.chmod(token_file, 0o600)
    return token


def _demo_customer(sim: Any, stop: threading.Event) -> None:
    """Put goods on the demo scale now and then, so weight events flow to the cloud."""
    weights = [Decimal("0.000"), Decimal("0.734"), Decimal("0.000"), Decimal("1.250"), Decimal("0.000"), Decimal("2.105")]
    i = 0
    while not stop.wait(15):
        i = (i + 1) % len(weights)
        sim.set_weight(weights[i])


def run_up(api_port: int = 8000, mqtt_port: int = 1883, data_dir: str = "var") -> int:
    """Run until Ctrl-C; returns the process exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data = Path(data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    stops: list[tuple[str, Callable[[], None]]] = []
    stop_event = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop_event.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        from vitrina.broker import EmbeddedBroker

        broker = EmbeddedBroker(port=mqtt_port).start()
        stops.append(("broker", broker.stop))
        if broker.port != mqtt_port:
            console.print(f"[yellow]port {mqtt_port} is taken: the embedded MQTT broker uses {broker.port}[/]")

        os.environ.setdefault("VITRINA_DATABASE_URL", f"sqlite:///{data / 'vitrina.db'}")
        from cloud.config import CloudSettings
        from cloud.db import upgrade

        host = os.environ.get("VITRINA_API_HOST", "127.0.0.1")
        port = choose_port(host, api_port)
        if port != api_port:
            console.print(f"[yellow]port {api_port} is taken: the API uses {port}[/]")
        settings = CloudSettings(mqtt_url=broker.url, api_port=port, api_host=host, redis_url=None)
        upgrade(settings.database_url)
        token = _demo_token(settings.database_url, data / "demo-token.txt")

        from cloud.bus.consumer import BusConsumer
        from cloud.worker import PeriodicRunner

        consumer = BusConsumer(settings).start()
        stops.append(("bus consumer", consumer.stop))
        runner = PeriodicRunner(settings)
        runner.start()
        stops.append(("task runner", runner.stop))

        from simulators.scale.mtsics import MtSicsConfig, MtSicsSimulator

        sim = MtSicsSimulator(MtSicsConfig(initial_weight=Decimal("0.000")))
        pty_path = sim.serve_pty()
        stops.append(("scale simulator", sim.stop))
        customer = threading.Thread(target=_demo_customer, args=(sim, stop_event), daemon=True)
        customer.start()

        from gateway.config import parse_config
        from gateway.runtime import Gateway

        gw_config = parse_config(
            {
                "tenant": DEMO_TENANT,
                "store": DEMO_STORE,
                "gateway": DEMO_GATEWAY,
                "data_dir": str(data / "gateway"),
                "broker": {"url": broker.url, "keepalive": 10},
                "devices": [{"id": "scale-1", "kind": "scale", "driver": "mtsics", "url": pty_path}],
            },
            source="vitrina up",
        )
        gateway = Gateway(gw_config).start()
        stops.append(("gateway", gateway.stop))

        import uvicorn

        from cloud.app import create_app

        server = uvicorn.Server(uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning"))
        api_thread = threading.Thread(target=server.run, name="api", daemon=True)
        api_thread.start()
        deadline = time.monotonic() + 15
        while not server.started and api_thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not server.started:
            raise RuntimeError(f"the API did not start on {host}:{port}")

        def stop_api() -> None:
            server.should_exit = True
            api_thread.join(10)

        stops.append(("api", stop_api))
        base = f"http://{host}:{port}"
        console.print("\n[bold green]Vitrina is up[/]  (Ctrl-C stops it)\n")
        console.print(f"  API              {base}/docs")
        console.print(f"  health           {base}/healthz")
        console.print(f"  MQTT broker      {broker.url}")
        console.print(f"  database         {settings.database_url}")
        console.print(f"  gateway          {DEMO_TENANT}/{DEMO_STORE}/{DEMO_GATEWAY}, scale-1 on {pty_path}")
        console.print(f"  demo API token   {token}")
        print(
            f"\n  curl -H 'Authorization: Bearer {token}' {base}/api/v1/devices\n"
            f"  curl -X POST -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\\n"
            f"       -d '{{\"action\": \"weigh\"}}' {base}/api/v1/devices/1/commands\n"
        )
        stop_event.wait()
        console.print("stopping…")
        return 0
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        console.print(f"[red]vitrina up failed: {exc}[/]")
        log.debug("up failed", exc_info=True)
        return 1
    finally:
        stop_event.set()
        for name, stop in reversed(stops):
            try:
                stop()
            except Exception as exc:  # keep stopping the rest
                log.warning("stopping %s: %s", name, exc)
