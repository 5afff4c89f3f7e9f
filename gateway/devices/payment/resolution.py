"""``resolve``: settling an ``unknown_outcome`` — the terminal's word first, then a person's.

A pay or refund whose outcome nobody could learn is stored ``failed``/``unknown_outcome`` and every
repeat gets that answer (never a blind retry). A person checks the terminal or the bank statement
and sends ``resolve {operation_id, outcome, note}``. The binding asks ``find`` once more first:

* the terminal answers (approved, declined, or no record = not performed) → that outcome is
  recorded, whatever the person said (``decided_by: terminal``; the reply says when it differs);
* the terminal still cannot tell → the person's outcome is recorded (``decided_by: person``,
  ``source: person``; an approval carries what is known: operation, id, amount — no RRN).

The stored reply of the original command is replaced through :meth:`gateway.journal.Journal.resolve`
(compare-and-set: only a stored ``unknown_outcome``, durable on return), so a repeat of the original
command_id gets ``duplicate`` ``done`` (approved) or ``failed``/``declined``, or — ``not_performed``
being in ``rerun_on`` — runs again, asking ``find`` before it charges. Every record carries
``resolution`` (who decided, what the person claimed, their note, the resolve command_id); the
``payment`` event carries it too.

This module builds the records (pure); the binding does the I/O (journal, terminal, outbox).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drivers.payment.base import PaymentResult
from gateway.devices.payment import const
from gateway.devices.payment.actions import ResolveArgs, payment_json
from gateway.journal import StoredReply
from protocols.bus import Reply, ReplyStatus

RESOLUTION = "resolution"


class Refused(Exception):
    """``resolve`` cannot settle this command (``code``: ``const.CODE_*``); nothing was written."""

    def __init__(self, message: str, code: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.data = data


@dataclass(frozen=True, slots=True)
class Settlement:
    """What a resolution writes: the original command's new ``reply``, its ``payment`` event data,
    and the ``answer`` of the resolve command."""

    reply: Reply
    event: dict[str, Any]
    answer: dict[str, Any]


def payment_of(reply: Reply | None) -> dict[str, Any] | None:
    """The payment data of a stored reply: ``result`` of ``done``, ``result.last`` of ``failed``."""
    if reply is None or reply.result is None:
        return None
    data = reply.result if reply.status is ReplyStatus.DONE else reply.result.get("last")
    return data if isinstance(data, dict) else None


def resolution_of(reply: Reply | None) -> dict[str, Any] | None:
    data = payment_of(reply)
    found = data.get(RESOLUTION) if data is not None else None
    return found if isinstance(found, dict) else None


def check(entry: StoredReply | None, device: str, operation_id: str, resolve_id: str) -> Settlement | None:
    """Refuse what cannot be resolved; the earlier settlement if this very ``resolve`` made it
    (a re-run after a crash answers it again); ``None`` when ``entry`` awaits resolution."""
    if entry is None:
        raise Refused(f"Команда {operation_id} не найдена в журнале шлюза: разрешать нечего",
                      const.CODE_OPERATION_NOT_FOUND)
    if entry.device != device or entry.action not in const.RESOLVABLE_ACTIONS:
        raise Refused(f"Команда {operation_id} — {entry.action} устройства {entry.device}, а не оплата или возврат "
                      f"терминала {device}: разрешать нечего", const.CODE_NOTHING_TO_RESOLVE)
    stored = entry.reply
    if stored is None:
        raise Refused(f"Операция {operation_id} ещё выполняется или восстанавливается после перезапуска шлюза: "
                      "дождитесь её ответа", const.CODE_NOTHING_TO_RESOLVE)
    resolution = resolution_of(stored)
    if resolution is not None:
        if resolution.get("command_id") == resolve_id:
            data = payment_of(stored)
            assert data is not None
            return Settlement(stored, data, answer(stored))
        raise Refused(f"Исход операции {operation_id} уже разрешён командой {resolution.get('command_id')}: "
                      f"{_name(resolution.get('outcome'))}", const.CODE_ALREADY_RESOLVED, payment_of(stored))
    if (stored.status, stored.code) != (ReplyStatus.FAILED, const.CODE_UNKNOWN_OUTCOME):
        known = stored.status.value if stored.code is None else f"{stored.status.value}/{stored.code}"
        raise Refused(f"Исход операции {operation_id} известен ({known}): разрешать нечего",
                      const.CODE_NOTHING_TO_RESOLVE, payment_of(stored))
    return None


def settle(
    entry: StoredReply, args: ResolveArgs, resolve_id: str, found: PaymentResult | None, *, terminal_knows: bool,
    why: str = "",
) -> Settlement:
    """The records of a resolution. ``terminal_knows``: ``find`` answered (``found``, ``None`` = no
    record: not performed); else ``why`` it could not, and the person's ``args.outcome`` decides."""
    assert entry.reply is not None
    last = payment_of(entry.reply) or {}
    amount = entry.args.get("amount")
    amount = amount if isinstance(amount, int) else last.get("amount")
    operation = last.get("operation") or entry.action
    record = {
        "command_id": resolve_id,
        "decided_by": const.DECIDED_BY_TERMINAL if terminal_knows else const.DECIDED_BY_PERSON,
        "claimed": args.outcome,
        "note": args.note,
        "terminal": None if terminal_knows else why,
    }
    if terminal_knows and found is not None:
        data = payment_json(found, source=const.SOURCE_CONTROL_TAPE, amount=amount if isinstance(amount, int) else None)
        if not found.approved and found.code == const.CODE_NOT_PERFORMED:
            data["result"] = const.RESULT_NOT_PERFORMED
        outcome = data["result"]
    elif terminal_knows or args.outcome == const.RESOLVE_NOT_PERFORMED:
        outcome = const.RESULT_NOT_PERFORMED
        data = _known(operation, args.operation_id, amount, outcome,
                      const.SOURCE_CONTROL_TAPE if terminal_knows else const.SOURCE_PERSON, args.note)
    else:
        outcome = const.RESULT_APPROVED
        data = _known(operation, args.operation_id, amount, outcome, const.SOURCE_PERSON, args.note)
    data[RESOLUTION] = {**record, "outcome": outcome}
    session = entry.reply.session
    if outcome == const.RESULT_APPROVED:
        reply = Reply(session=session, command_id=args.operation_id, status=ReplyStatus.DONE, result=data)
    elif outcome == const.RESULT_NOT_PERFORMED:
        reply = Reply(
            session=session, command_id=args.operation_id, status=ReplyStatus.FAILED, code=const.CODE_NOT_PERFORMED,
            message=f"Операция {entry.action} {args.operation_id} не проведена ({_whose(terminal_knows, args.note)}). "
            "Можно повторить с тем же command_id: терминал будет спрошен ещё раз до списания",
            result={"last": data},
        )
    else:
        reply = Reply(session=session, command_id=args.operation_id, status=ReplyStatus.FAILED,
                      code=const.CODE_DECLINED, message=str(data.get("message") or "Операция отклонена"),
                      result={"last": data})
    return Settlement(reply, data, answer(reply))


def answer(reply: Reply) -> dict[str, Any]:
    """The resolve command's result for the original's settled ``reply``."""
    data = payment_of(reply) or {}
    record = data.get(RESOLUTION) or {}
    operation_id = reply.command_id
    outcome, claimed = record.get("outcome"), record.get("claimed")
    if record.get("decided_by") == const.DECIDED_BY_PERSON:
        text = (f"Терминал не может сказать исход операции {operation_id} ({record.get('terminal')}): "
                f"записан исход со слов проверившего — {_name(outcome)}")
    elif outcome == claimed:
        text = f"Терминал подтвердил исход операции {operation_id}: {_name(outcome)}; исход записан"
    else:
        text = (f"Терминал знает исход операции {operation_id}: {_name(outcome)}. Записан исход терминала, "
                f"а не указанный вручную ({_name(claimed)})")
    return {
        "operation_id": operation_id,
        "outcome": outcome,
        "decided_by": record.get("decided_by"),
        "claimed": claimed,
        "overruled": record.get("decided_by") == const.DECIDED_BY_TERMINAL and outcome != claimed,
        "note": record.get("note"),
        "message": text,
        "reply": {"status": reply.status.value, "code": reply.code},
        "payment": data,
    }


def _known(operation: str, operation_id: str, amount: Any, outcome: str, source: str, note: str) -> dict[str, Any]:
    """Payment data of an outcome nobody read from the terminal: what the journal knows."""
    approved = outcome == const.RESULT_APPROVED
    if source == const.SOURCE_PERSON:
        message = f"{_name(outcome).capitalize()} — со слов проверившего: {note}"
    else:
        message = "Терминал не знает этой операции: списания не было"
    return {
        "result": outcome, "approved": approved, "operation": operation, "operation_id": operation_id,
        "amount": amount, "code": outcome, "message": message, "device_code": None, "auth_code": None, "rrn": None,
        "card_mask": None, "voided": False if approved else None, "slip": None, "source": source,
    }


def _whose(terminal_knows: bool, note: str) -> str:
    return "терминал не знает этой операции" if terminal_knows else f"со слов проверившего: {note}"


def _name(outcome: object) -> str:
    return const.OUTCOME_NAMES.get(str(outcome), str(outcome))
