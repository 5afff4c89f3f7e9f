"""The executable: one process per operation, like ``sb_pilot``.

    python -m simulators.payment.upos [--state FILE] 1 <kop> ORDER=<ref>
    python -m simulators.payment.upos [--state FILE] 3 <kop> RRN=<rrn> ORDER=<ref>
    python -m simulators.payment.upos [--state FILE] 7 | 9 1 | 12

``--state`` defaults to ``$VITRINA_UPOS_STATE`` or ``./upos-state.db``. The process writes ``p``
(the slip, CP866) and then ``e`` (the result) into its working directory, prints the PIN pad's
prompts on stdout (CP866) while it waits, and exits with the result code truncated to 8 bits,
as any program does on POSIX (``exit(4134)`` is seen as 38): the ``e`` file is authoritative.

Faults come from the model's rules and script (``simulators.payment.model``); ``lose_answer``
makes the process die (exit 134, as after an abort) after the bank charged, without ``e``/``p``.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path

from protocols.upos import codes, files
from protocols.upos.messages import BadArguments, ControlTape, Purchase, Reconcile, Refund, parse_argv
from simulators.payment.model import (
    AUTHORISING,
    PIN_ENTRY,
    PURCHASE,
    REFUND,
    WAITING_CARD,
    Entry,
    TerminalModel,
)

PROMPTS = {WAITING_CARD: "ВСТАВЬТЕ КАРТУ", PIN_ENTRY: "ВВЕДИТЕ ПИН-КОД", AUTHORISING: "СВЯЗЬ С БАНКОМ..."}
BAD_ARGUMENTS = 99
CRASH_STATUS = 134


def _say(stage: str) -> None:
    sys.stdout.buffer.write((PROMPTS[stage] + "\r\n").encode(files.ENCODING))
    sys.stdout.buffer.flush()


def _message(code: int) -> str:
    return "ОДОБРЕНО" if code == codes.APPROVED else codes.lookup(code).message.upper()


def _stamp(ts: datetime) -> str:
    return ts.strftime("%d.%m.%y %H:%M:%S")


def _slip(model: TerminalModel, entry: Entry, *, copy: bool = False) -> bytes:
    rules = model.rules()
    kind = {PURCHASE: files.KIND_PURCHASE, REFUND: files.KIND_REFUND}.get(entry.kind, files.KIND_VOID)
    return files.encode_slip(
        merchant=rules.merchant, terminal_id=rules.terminal_id, kind=kind, amount_kop=entry.amount_kop,
        timestamp=_stamp(entry.ts), op_number=entry.op_number, card_mask=entry.card_mask,
        auth_code=entry.auth_code, rrn=entry.rrn, order=entry.order, copy=copy,
    )


def _finish(
    workdir: Path, code: int, *, slip: bytes | None = None, entry: Entry | None = None, terminal_id: str = ""
) -> int:
    if slip is not None:
        (workdir / "p").write_bytes(slip)
    if entry is not None:
        result = files.ResultFile(
            code=code, message=_message(code), card_mask=entry.card_mask, expiry="12/29",
            auth_code=entry.auth_code, op_number=entry.op_number,
            card_type="МИР" if entry.pan.startswith("220") else "VISA" if entry.pan.startswith("4") else "MASTERCARD",
            own_card=entry.pan.startswith("427"), terminal_id=terminal_id, timestamp=entry.ts.strftime("%Y%m%d%H%M%S"),
            rrn=entry.rrn, card_hash=entry.pan[-4:].encode().hex().upper(),
        )
    else:
        result = files.ResultFile(code=code, message=_message(code))
    (workdir / "e").write_bytes(result.encode())
    return code & 0xFF


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sb_pilot (simulator)", add_help=True)
    parser.add_argument("--state", default=os.environ.get("VITRINA_UPOS_STATE", "upos-state.db"))
    parser.add_argument("words", nargs="*")
    args = parser.parse_args(argv)
    workdir = Path.cwd()
    try:
        request = parse_argv(args.words)
    except BadArguments as exc:
        (workdir / "e").write_bytes(files.ResultFile(BAD_ARGUMENTS, f"НЕВЕРНЫЕ ПАРАМЕТРЫ: {exc}").encode())
        return BAD_ARGUMENTS
    model = TerminalModel(args.state)
    if isinstance(request, Purchase | Refund):
        if isinstance(request, Purchase):
            decision = model.run(PURCHASE, request.amount_kop, request.order, on_stage=_say)
        else:
            decision = model.run(REFUND, request.amount_kop, request.order, original_rrn=request.rrn,
                                 auto_void=True, on_stage=_say)
        if decision.lost:
            os._exit(CRASH_STATUS)
        if decision.entry is not None:
            return _finish(workdir, decision.code, slip=_slip(model, decision.entry), entry=decision.entry,
                           terminal_id=model.rules().terminal_id)
        return _finish(workdir, decision.code)
    rules = model.rules()
    model.sleep(rules.latency)
    if isinstance(request, Reconcile):
        code, totals = model.reconcile()
        if totals is None:
            return _finish(workdir, code)
        report = files.encode_reconciliation(
            merchant=rules.merchant, terminal_id=rules.terminal_id, batch=str(totals.batch),
            timestamp=_stamp(datetime.now()), purchases=files.Totals(*totals.purchases),
            refunds=files.Totals(*totals.refunds), voids=files.Totals(*totals.voids),
        )
        return _finish(workdir, code, slip=report)
    if isinstance(request, ControlTape):
        batch, entries = model.tape()
        kinds = {PURCHASE: files.KIND_PURCHASE, REFUND: files.KIND_REFUND}
        tape = files.encode_tape(
            terminal_id=rules.terminal_id, batch=str(batch),
            entries=[
                files.TapeEntry(e.op_number, _stamp(e.ts), kinds.get(e.kind, files.KIND_VOID), e.amount_kop,
                                e.card_mask, e.auth_code, e.rrn, e.order, e.voided)
                for e in entries
            ],
        )
        return _finish(workdir, codes.APPROVED, slip=tape)
    last = model.last_entry()
    if last is None:
        return _finish(workdir, codes.APPROVED)
    return _finish(workdir, codes.APPROVED, slip=_slip(model, last, copy=True))
