"""Drive a paho client from the running asyncio loop instead of paho's own network thread.

With ``loop_start()`` every publish from the event loop is handed to paho's thread (a wake-up
byte, then that thread writes), and every message paho reads is handed back to the event loop
(``call_soon_threadsafe``): two thread switches per command round trip, each ~0.3 ms on a small
virtual machine. paho's documented external-loop API (``on_socket_open``/``close``/
``register_write``/``unregister_write`` with ``loop_read``/``loop_write``/``loop_misc``) lets the
event loop do the I/O itself: a publish is written by the loop that made it, a reply is read by
the loop that waits for it.

Only the TCP connect runs in a worker thread (it may block for paho's connect timeout when the
broker is unreachable); the socket callbacks it fires there are passed to the loop thread. When
the connection drops, the driver reconnects with exponential backoff, as ``loop_start`` would.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

MISC_INTERVAL_S = 1.0
"""How often ``loop_misc`` runs: keepalive pings and the broker's silence timeout."""


class AsyncioDriver:
    """Connects ``client`` to ``host:port`` and keeps it connected from the running loop."""

    def __init__(self, client: mqtt.Client, host: str, port: int, keepalive: int, *,
                 reconnect_min_s: float = 0.5, reconnect_max_s: float = 15.0) -> None:
        self.client = client
        self.host = host
        self.port = port
        self.keepalive = keepalive
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._closed: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: Any = None
        self._stopping = False

    def start(self) -> None:
        """Attach to the running loop and connect in the background."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._closed = asyncio.Event()
        client = self.client
        client.on_socket_open = lambda _c, _u, sock: self._in_loop(self._opened, sock)
        client.on_socket_close = lambda _c, _u, sock: self._in_loop(self._gone, sock)
        client.on_socket_register_write = lambda _c, _u, sock: self._in_loop(self._want_write, sock)
        client.on_socket_unregister_write = lambda _c, _u, sock: self._in_loop(self._written, sock)
        self._task = self._loop.create_task(self._run(), name="mqtt-asyncio-driver")

    async def stop(self) -> None:
        """Disconnect (flushing the DISCONNECT packet) and stop reconnecting."""
        self._stopping = True
        if self.client.is_connected():
            self.client.disconnect()
            self.client.loop_write()
        if self._socket is not None:
            self._gone(self._socket)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    # Loop thread -------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._loop is not None and self._closed is not None
        delay = self.reconnect_min_s
        first = True
        while not self._stopping:
            self._closed.clear()
            try:
                await self._loop.run_in_executor(None, self._connect, first)
            except (OSError, ValueError) as exc:
                log.warning("MQTT %s:%s unreachable (%s); retrying in %.1f s", self.host, self.port, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect_max_s)
                continue
            first = False
            delay = self.reconnect_min_s
            while not self._closed.is_set():
                try:
                    await asyncio.wait_for(self._closed.wait(), MISC_INTERVAL_S)
                except TimeoutError:
                    if self.client.loop_misc() != mqtt.MQTT_ERR_SUCCESS:
                        break
            if not self._stopping:
                await asyncio.sleep(delay)

    def _connect(self, first: bool) -> None:
        """Worker thread: TCP connect and send CONNECT (paho fires ``on_socket_open`` here)."""
        if first:
            self.client.connect(self.host, self.port, self.keepalive)
        else:
            self.client.reconnect()

    def _in_loop(self, func: Any, sock: Any) -> None:
        """Run ``func(sock)`` on the loop thread (paho calls the socket callbacks from whichever
        thread did the I/O: the connect runs in a worker thread)."""
        if threading.get_ident() == self._loop_thread:
            func(sock)
        elif self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(func, sock)

    def _opened(self, sock: socket.socket) -> None:
        assert self._loop is not None
        self._socket = sock
        self._loop.add_reader(sock, self._read)

    def _read(self) -> None:
        self.client.loop_read()
        # TLS: bytes already decrypted into the SSL object do not make the socket readable again
        # (paho's own loop checks ``pending()`` for the same reason)
        sock = self._socket
        while sock is not None and sock is self._socket and getattr(sock, "pending", lambda: 0)() > 0:
            self.client.loop_read()

    def _want_write(self, sock: socket.socket) -> None:
        assert self._loop is not None
        if sock is self._socket:
            self._loop.add_writer(sock, self._write)

    def _write(self) -> None:
        self.client.loop_write()

    def _written(self, sock: socket.socket) -> None:
        assert self._loop is not None
        if sock is self._socket:
            self._loop.remove_writer(sock)

    def _gone(self, sock: socket.socket) -> None:
        assert self._loop is not None and self._closed is not None
        if sock is not self._socket:
            return
        self._socket = None
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)
        self._closed.set()
