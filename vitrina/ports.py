"""Port selection for the one-machine default: a taken port gets a free one, never a crash."""

from __future__ import annotations

import socket


def port_is_free(host: str, port: int) -> bool:
    """True when ``host:port`` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def choose_port(host: str, wanted: int) -> int:
    """``wanted`` when free (0 means any), else a free one."""
    if wanted and port_is_free(host, wanted):
        return wanted
    return free_port(host)
