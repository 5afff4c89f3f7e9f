"""Deterministic crash points for kill tests: ``VITRINA_CRASHPOINT=name`` → ``os._exit(137)`` there.

A test that must prove "killed right after the receipt was closed, before the reply went out"
cannot rely on the timing of a ``kill -9`` from outside. Code on a dangerous path calls
``crashpoint("fiscal.after_close")``; with the variable unset (always, in production) that is
one dictionary look-up and nothing else. With it set to the same name (several names may be
given, comma-separated), the process ends at once with status 137 — what SIGKILL gives — without
running ``finally`` blocks, atexit hooks or SQLite/outbox cleanup, exactly like a real kill.
"""

from __future__ import annotations

import logging
import os
import sys

ENV = "VITRINA_CRASHPOINT"
EXIT_STATUS = 137

log = logging.getLogger(__name__)


def armed() -> frozenset[str]:
    """The crash points enabled by the environment (read on every call: tests set it per process)."""
    raw = os.environ.get(ENV, "")
    return frozenset(p.strip() for p in raw.split(",") if p.strip())


def crashpoint(name: str) -> None:
    """End the process like ``kill -9`` if ``name`` is armed; otherwise do nothing."""
    if name in armed():
        sys.stderr.write(f"crashpoint {name}: exiting with {EXIT_STATUS}\n")
        sys.stderr.flush()
        os._exit(EXIT_STATUS)
