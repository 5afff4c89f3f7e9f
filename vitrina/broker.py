"""The embedded MQTT broker of the one-machine default (amqtt, MQTT 3.1.1).

It runs on its own asyncio loop in a daemon thread so that the rest of ``vitrina up`` (paho
clients, uvicorn, the gateway) stays ordinary threaded code. Production uses Mosquitto; this
broker exists so a fresh machine without one still runs the whole store.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from vitrina.ports import choose_port

log = logging.getLogger(__name__)


class EmbeddedBroker:
    """Start/stop an amqtt broker on ``host:port`` (a taken port gets a free one)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.wanted_port = port
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        # amqtt logs every refused MQTT 5 probe and every dropped client as a warning: our
        # clients probe v5 first by design, so only its errors are worth showing.
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self.port = choose_port(self.host, self.wanted_port)
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, failure), name="mqtt-broker", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError(f"embedded MQTT broker did not start on {self.host}:{self.port}")
        if failure:
            raise RuntimeError(f"embedded MQTT broker failed: {failure[0]}") from failure[0]
        return self

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        from amqtt.broker import Broker

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

        async def main() -> None:
            try:
                self._broker = Broker(config)
                await self._broker.start()
            except BaseException as exc:  # report any start failure to the caller
                failure.append(exc)
            finally:
                ready.set()

        loop.run_until_complete(main())
        if not failure:
            loop.run_forever()
        loop.close()

    def stop(self, timeout: float = 5.0) -> None:
        loop, broker = self._loop, self._broker
        if loop is None or broker is None or not loop.is_running():
            return

        async def shutdown() -> None:
            try:
                await broker.shutdown()
            finally:
                loop.stop()

        fut = asyncio.run_coroutine_threadsafe(shutdown(), loop)
        try:
            fut.result(timeout)
        except Exception as exc:  # amqtt may time out closing idle sessions; nothing is lost
            log.debug("embedded broker shutdown: %r", exc)
        if self._thread is not None:
            self._thread.join(timeout)
