"""Before a restarted gateway asks the terminal anything: wait out an operation it left running.

The UPOS driver runs ``sb_pilot`` in a session of its own, so a SIGKILLed gateway leaves it
running: the customer may still be at the PIN pad and the bank may still charge. Asking the
control tape at that moment would answer "not performed" for a purchase that is about to be
approved, and the program's ``e``/``p`` files would collide with the tape's. So recovery first
waits for every process whose working directory is the terminal's (found through ``/proc``),
up to ``recovery_wait_s``, then kills what is left (its process group: the driver started it as
a session leader). A terminal with no working directory (nexo over TCP) needs none of this: the
POI finishes or abandons the transaction on its own and ``TransactionStatus`` reports it — but
while it runs it says ``InProgress`` (``find`` → ``OutcomeUnknown``), so recovery asks again
(``ask_until_known``) up to the same ``recovery_wait_s``; a terminal that does not answer at all is
``DeviceUnavailable``: the worker retries the recovery when it is back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from drivers.errors import DeviceUnavailable
from drivers.payment.base import OutcomeUnknown

log = logging.getLogger(__name__)

PROC = Path("/proc")

T = TypeVar("T")


def programs_in(workdir: Path) -> list[int]:
    """Pids of the processes (other than ours) whose current directory is ``workdir``."""
    if not PROC.is_dir():
        return []
    try:
        target = workdir.resolve()
    except OSError:
        return []
    me = os.getpid()
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:  # gone, a zombie, or not ours to look at
            continue
        if cwd == target:
            found.append(int(entry.name))
    return found


def wait_for_programs(workdir: Path, timeout: float, *, interval: float = 0.1) -> list[int]:
    """Wait until no program runs in ``workdir``; kill what still runs after ``timeout`` s.

    Returns the pids that were found running at first (for the log and the tests).
    """
    first = programs_in(workdir)
    if not first:
        return []
    log.warning("terminal program(s) %s still running in %s: waiting up to %.0f s", first, workdir, timeout)
    deadline = time.monotonic() + timeout
    while (left := programs_in(workdir)) and time.monotonic() < deadline:
        time.sleep(interval)
    for pid in left:
        log.error("terminal program %d still running after %.0f s: killing it", pid, timeout)
        with contextlib.suppress(OSError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
    kill_deadline = time.monotonic() + 5.0
    while programs_in(workdir) and time.monotonic() < kill_deadline:
        time.sleep(interval)
    return first


def ask_until_known(find: Callable[[str], T], op_id: str, timeout: float, interval: float) -> T:
    """``find(op_id)``, asked again every ``interval`` s while the terminal cannot tell, up to ``timeout``.

    ``find`` is read-only, so asking again is safe. ``OutcomeUnknown`` after ``timeout``; one caused
    by an unreachable terminal → ``DeviceUnavailable`` at once (nothing to wait for on this link).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return find(op_id)
        except OutcomeUnknown as exc:
            if _caused_by(exc, DeviceUnavailable):
                raise DeviceUnavailable(f"терминал не отвечает, спросим об операции {op_id}, когда ответит: "
                                        f"{exc.message}") from exc
            if time.monotonic() + interval >= deadline:
                raise
            log.info("operation %s: the terminal cannot tell yet (%s); asking again", op_id, exc.message)
            time.sleep(interval)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    cause = exc.__cause__
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, kind):
            return True
        seen.add(id(cause))
        cause = cause.__cause__
    return False
