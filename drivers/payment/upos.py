"""Sberbank UPOS through its command-line program (``sb_pilot`` / ``loadparm``).

Transport: one subprocess per operation, started in the configured working directory where
the program writes ``e`` (the result) and ``p`` (the slip). The driver deletes both before it
starts, so what it reads afterwards was written by this run. The process runs in a session of
its own; on timeout the whole group is killed (SIGKILL) — a PIN pad program that hangs must
not keep the terminal locked.

Lost answers. The operation id goes to the terminal as ``ORDER=`` and is printed on the slip
and the control tape (op 9). When the program times out, crashes, or leaves an ``e`` file
that does not parse, the driver reads the control tape: the operation is there (approved, the
result is rebuilt from the tape line) or it is not (nothing was charged). Only when the tape
itself cannot be read does ``OutcomeUnknown`` leave the driver. The tape covers the open batch:
resolve unknown operations before ``reconcile()`` closes it.

Exit status: POSIX truncates it to 8 bits (``exit(4134)`` reads as 38), so the ``e`` file's
code is authoritative; the exit status only tells a crash (no ``e``) from a clean exit.

Locking: a ``threading.Lock`` for this object and an ``flock`` on ``<workdir>/.vitrina-upos.lock``
for any other process sharing the working directory; either taken → ``TerminalBusy``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from drivers.errors import (
    DeviceProtocolError,
    DeviceRejected,
    DeviceTimeout,
    DeviceUnavailable,
    DriverConfigError,
)
from drivers.payment.base import (
    OP_CANCEL,
    OP_PURCHASE,
    OP_REFUND,
    OperationNotFound,
    OutcomeUnknown,
    PaymentResult,
    Progress,
    ReconciliationResult,
    TerminalBusy,
    TerminalStatus,
    from_kopecks,
    to_kopecks,
)
from protocols.upos import codes, files
from protocols.upos.errors import LocalProtocolError, MissingFile, RemoteProtocolError
from protocols.upos.messages import ControlTape, Purchase, Reconcile, Refund, Request, SlipCopy

LOCK_NAME = ".vitrina-upos.lock"
NOT_PERFORMED = "not_performed"


@dataclass(frozen=True, slots=True)
class _Run:
    timed_out: bool
    status: int | None
    e: bytes | None
    p: bytes | None


class UposTerminal:
    """``PaymentTerminal`` over the UPOS command line. See the module docstring."""

    def __init__(
        self,
        command: str | list[str],
        workdir: str | Path,
        *,
        timeout: float = 180.0,
        service_timeout: float = 60.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.command = shlex.split(command) if isinstance(command, str) else list(command)
        if not self.command:
            raise DriverConfigError("Не задана команда запуска sb_pilot")
        if timeout <= 0 or service_timeout <= 0:
            raise DriverConfigError("Таймауты терминала должны быть положительными")
        self.workdir = Path(workdir)
        self.timeout = timeout
        self.service_timeout = service_timeout
        self.env = env
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"UposTerminal({self.command[0]!r}, workdir={str(self.workdir)!r})"

    # --- lifecycle -----------------------------------------------------------------------

    def open(self) -> None:
        if not self.workdir.is_dir():
            raise DeviceUnavailable(f"Нет рабочего каталога терминала {self.workdir}")
        if shutil.which(self.command[0]) is None and not Path(self.command[0]).is_file():
            raise DeviceUnavailable(f"Не найдена программа терминала {self.command[0]}")

    def close(self) -> None:
        """Nothing stays open between operations."""

    def status(self) -> TerminalStatus:
        try:
            self.open()
        except DeviceUnavailable as exc:
            return TerminalStatus("offline", exc.message)
        if self._lock.locked():
            return TerminalStatus("busy", "Идёт операция")
        return TerminalStatus("idle")

    # --- card operations -----------------------------------------------------------------

    def purchase(self, amount: Decimal, operation_id: str, progress: Progress | None = None) -> PaymentResult:
        kop = to_kopecks(amount)
        request = self._build(lambda: Purchase(kop, operation_id))
        with self._exclusive():
            return self._card_operation(OP_PURCHASE, request, operation_id, kop, progress)

    def refund(
        self, amount: Decimal, operation_id: str, original: PaymentResult | str, progress: Progress | None = None
    ) -> PaymentResult:
        kop = to_kopecks(amount)
        rrn = original.rrn if isinstance(original, PaymentResult) else original
        request = self._build(lambda: Refund(kop, rrn, operation_id))
        with self._exclusive():
            return self._card_operation(OP_REFUND, request, operation_id, kop, progress)

    def cancel(self, operation_id: str, progress: Progress | None = None) -> PaymentResult:
        with self._exclusive():
            tape = self._tape(operation_id)
            entries = tape.by_order(operation_id)
            voids = [e for e in entries if e.kind == files.KIND_VOID]
            if voids:
                return self._from_tape(voids[-1], operation_id)
            originals = [e for e in entries if e.kind != files.KIND_VOID]
            if not originals:
                raise OperationNotFound(
                    f"Операция {operation_id} не найдена в текущем пакете: отмена невозможна, оформите возврат"
                )
            original = originals[-1]
            request = self._build(lambda: Refund(original.amount_kop, original.rrn, operation_id))
            return self._card_operation(OP_CANCEL, request, operation_id, original.amount_kop, progress)

    def find(self, operation_id: str) -> PaymentResult | None:
        with self._exclusive():
            return self._find(operation_id)

    # --- service operations --------------------------------------------------------------

    def reconcile(self) -> ReconciliationResult:
        with self._exclusive():
            run = self._run(Reconcile(), self.service_timeout, None)
            if run.timed_out:
                raise DeviceTimeout(f"Сверка итогов не завершилась за {self.service_timeout:g} с")
            try:
                result = self._result(run, card_operation=False)
                row = codes.lookup(result.code)
                if result.code != codes.APPROVED:
                    return ReconciliationResult(False, row.category.value, row.message)
                report = files.parse_reconciliation(self._need_p(run))
            except RemoteProtocolError as exc:
                raise DeviceProtocolError(f"Терминал вернул нечитаемый отчёт сверки: {exc}") from exc
            return ReconciliationResult(
                ok=report.matched,
                code="approved" if report.matched else "totals_mismatch",
                message="Итоги совпали" if report.matched else "Итоги не совпали: обратитесь в банк",
                batch=report.batch,
                purchases_count=report.purchases.count, purchases_amount=from_kopecks(report.purchases.amount_kop),
                refunds_count=report.refunds.count, refunds_amount=from_kopecks(report.refunds.amount_kop),
                voids_count=report.voids.count, voids_amount=from_kopecks(report.voids.amount_kop),
                slip=report.text,
            )

    def last_slip(self) -> str:
        with self._exclusive():
            run = self._run(SlipCopy(), self.service_timeout, None)
            if run.timed_out:
                raise DeviceTimeout(f"Терминал не выдал копию чека за {self.service_timeout:g} с")
            try:
                result = self._result(run, card_operation=False)
                if result.code != codes.APPROVED:
                    raise DeviceRejected(codes.lookup(result.code).message, code=codes.lookup(result.code).category.value)
                if run.p is None:
                    raise DeviceRejected("В терминале нет последнего чека", code="no_slip")
                return files.parse_slip(run.p).text
            except RemoteProtocolError as exc:
                raise DeviceProtocolError(f"Терминал вернул нечитаемую копию чека: {exc}") from exc

    # --- internals -----------------------------------------------------------------------

    @staticmethod
    def _build(make: Any) -> Request:
        try:
            request: Request = make()
        except LocalProtocolError as exc:
            raise DriverConfigError(f"Недопустимые параметры операции: {exc}", code="invalid_request") from exc
        return request

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        if not self._lock.acquire(blocking=False):
            raise TerminalBusy("Терминал занят другой операцией")
        try:
            try:
                self.workdir.mkdir(parents=True, exist_ok=True)
                handle = open(self.workdir / LOCK_NAME, "a+b")  # noqa: SIM115
            except OSError as exc:
                raise DeviceUnavailable(f"Нет доступа к рабочему каталогу терминала {self.workdir}: {exc}") from exc
            try:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError as exc:
                    raise TerminalBusy("Терминал занят операцией другого процесса") from exc
                yield
            finally:
                handle.close()
        finally:
            self._lock.release()

    def _card_operation(
        self, operation: str, request: Request, operation_id: str, kop: int, progress: Progress | None
    ) -> PaymentResult:
        run = self._run(request, self.timeout, progress)
        if run.timed_out:
            return self._resolve(operation, operation_id, f"терминал не ответил за {self.timeout:g} с", None)
        try:
            result = self._result(run, card_operation=True)
        except RemoteProtocolError as exc:
            return self._resolve(operation, operation_id, f"ответ терминала потерян или повреждён ({exc})", exc)
        row = codes.lookup(result.code)
        if not row.approved:
            return PaymentResult(
                approved=False, operation=operation, operation_id=operation_id, amount=from_kopecks(kop),
                code=row.category.value, message=row.message, device_code=str(result.code),
                card_mask=result.card_mask,
            )
        try:
            slip = files.parse_slip(self._need_p(run))
        except RemoteProtocolError as exc:
            # Money moved (the e file says so); only the slip is bad. The tape confirms the
            # operation; the cashier prints a copy with last_slip().
            return self._resolve(operation, operation_id, f"чек повреждён ({exc})", exc)
        return PaymentResult(
            approved=True, operation=OP_CANCEL if slip.kind == files.KIND_VOID else operation,
            operation_id=operation_id, amount=from_kopecks(slip.amount_kop), code=row.category.value,
            message=row.message, device_code=str(result.code), auth_code=result.auth_code, rrn=result.rrn,
            card_mask=result.card_mask, slip=slip.text, reference=result.rrn,
        )

    def _resolve(self, operation: str, operation_id: str, why: str, cause: Exception | None) -> PaymentResult:
        """After a lost answer: the tape decides, or the outcome is unknown."""
        try:
            found = self._find(operation_id)
        except OutcomeUnknown as exc:
            raise OutcomeUnknown(
                f"Результат операции {operation_id} неизвестен: {why}; контрольная лента недоступна ({exc.message}). "
                "Проверьте терминал, не повторяйте оплату",
                operation_id=operation_id,
            ) from (cause or exc)
        if found is not None:
            return found
        return PaymentResult(
            approved=False, operation=operation, operation_id=operation_id, amount=Decimal("0.00"),
            code=NOT_PERFORMED, message=f"Операция не проведена: {why}; списания не было (проверено по контрольной ленте)",
        )

    def _find(self, operation_id: str) -> PaymentResult | None:
        tape = self._tape(operation_id)
        entries = tape.by_order(operation_id)
        if not entries:
            return None
        originals = [e for e in entries if e.kind != files.KIND_VOID]
        if originals:
            return self._from_tape(originals[-1], operation_id)
        return self._from_tape(entries[-1], operation_id)

    def _tape(self, operation_id: str) -> files.Tape:
        run = self._run(ControlTape(), self.service_timeout, None)
        if run.timed_out:
            raise OutcomeUnknown(f"Контрольная лента не получена за {self.service_timeout:g} с",
                                 operation_id=operation_id)
        try:
            result = self._result(run, card_operation=False)
            if result.code != codes.APPROVED:
                raise OutcomeUnknown(
                    f"Терминал не выдал контрольную ленту: {codes.lookup(result.code).message}",
                    operation_id=operation_id,
                )
            return files.parse_tape(self._need_p(run))
        except RemoteProtocolError as exc:
            raise OutcomeUnknown(f"Контрольная лента нечитаема: {exc}", operation_id=operation_id) from exc

    @staticmethod
    def _from_tape(entry: files.TapeEntry, operation_id: str) -> PaymentResult:
        operation = {files.KIND_PURCHASE: OP_PURCHASE, files.KIND_REFUND: OP_REFUND}.get(entry.kind, OP_CANCEL)
        return PaymentResult(
            approved=True, operation=operation, operation_id=operation_id, amount=from_kopecks(entry.amount_kop),
            code="approved", message="Операция одобрена (по контрольной ленте)", device_code="0",
            auth_code=entry.auth_code, rrn=entry.rrn, card_mask=entry.card_mask, voided=entry.voided,
            reference=entry.rrn,
        )

    @staticmethod
    def _result(run: _Run, *, card_operation: bool) -> files.ResultFile:
        if run.e is None:
            raise MissingFile(f"программа завершилась (статус {run.status}) без файла результата e")
        return files.parse_result(run.e, card_operation=card_operation)

    @staticmethod
    def _need_p(run: _Run) -> bytes:
        if run.p is None:
            raise MissingFile("программа не записала файл p")
        return run.p

    def _run(self, request: Request, timeout: float, progress: Progress | None) -> _Run:
        for name in ("e", "p"):
            with contextlib.suppress(FileNotFoundError):
                (self.workdir / name).unlink()
        env = None if self.env is None else {**os.environ, **self.env}
        try:
            proc = subprocess.Popen(
                [*self.command, *request.argv()], cwd=self.workdir, env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            raise DeviceUnavailable(f"Не удалось запустить программу терминала {self.command[0]}: {exc}") from exc
        lines: queue.Queue[bytes | None] = queue.Queue()
        assert proc.stdout is not None
        reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout
        last_stage: str | None = None
        timed_out = False
        eof = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = proc.poll() is None
                break
            if eof:
                try:
                    proc.wait(timeout=left)
                except subprocess.TimeoutExpired:
                    continue
                break
            try:
                line = lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if line is None:
                eof = True
                continue
            stage = codes.stage_of(line.decode(files.ENCODING, errors="replace"))
            if stage is not None and stage != last_stage and progress is not None:
                last_stage = stage
                progress(stage)
        if timed_out:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        status = proc.wait()
        reader.join(timeout=1)
        return _Run(timed_out, status, self._read("e"), self._read("p"))

    def _read(self, name: str) -> bytes | None:
        try:
            return (self.workdir / name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DeviceUnavailable(f"Не удалось прочитать файл {name} терминала: {exc}") from exc


def _pump(stream: IO[bytes], out: queue.Queue[bytes | None]) -> None:
    try:
        for line in iter(stream.readline, b""):
            out.put(line)
    finally:
        out.put(None)
        stream.close()
