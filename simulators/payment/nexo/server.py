"""The nexo POI: a threaded TCP server speaking Sale to POI over ``protocols.nexo``.

Per connection a reader thread decodes frames and answers at once what needs no card
(Login, TransactionStatus, Abort, errors); Payment, Reversal and Reconciliation run in a worker
thread so Abort and TransactionStatus still reach the terminal while the customer is busy.

- **Login first**: any other request on a connection that has not logged in (or under another
  SaleID) gets its response type with ``Failure`` / ``LoggedOut``.
- **One operation at a time** for the whole terminal, whatever the connection: a second
  Payment, Reversal or Reconciliation gets ``Failure`` / ``Busy`` and changes nothing.
- **Progress**: DisplayRequest (and EventNotification ``CardInserted``) before each stage.
- **Abort** names the running request by MessageReference; honoured until the bank is asked
  (then the bank's answer stands): the payment ends ``Failure`` / ``Aborted``.
- **TransactionStatus** repeats the stored response of a Payment or Reversal named by
  MessageReference (``InProgress`` while it runs, ``NotFound`` if never seen); without a
  reference, the last one of this SaleID. The journal lives in the state file (``journal``).
- **Bad input**: a frame that is not a nexo message → EventNotification ``Reject`` with the
  reason (the nexo rule for a message the POI cannot process) and the link stays up; a request
  without ServiceID → its response with ``MessageFormat``; a length prefix over the limit (no
  framing left) → the connection is closed. Nothing bad kills the server.
- **Faults**: the model's rules and script (``lose_answer`` stores the response and drops the
  connection; ``hang``/``hang_after``), ``rules.latency``, and ``SimConfig.outgoing``, a hook that
  can replace or drop any outgoing frame.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from protocols.nexo import NEED_DATA, Connection, FrameTooLarge, MalformedMessage, decode, encode
from protocols.nexo.frames import MAX_FRAME
from protocols.nexo.messages import (
    ErrorCondition,
    LoginResponse,
    Message,
    MessageCategory,
    MessageReference,
    MessageType,
    PaymentRequest,
    PaymentResponse,
    PaymentTotals,
    POISystemData,
    ReconciliationResponse,
    RepeatedMessageResponse,
    RepeatedResponseMessageBody,
    Response,
    Result,
    ReversalRequest,
    ReversalResponse,
    SaleData,
    TransactionStatusRequest,
    TransactionStatusResponse,
    TransactionTotals,
)
from simulators.payment.model import AUTHORISING, PIN_ENTRY, PURCHASE, REFUND, VOID, Entry, TerminalModel
from simulators.payment.nexo import poi
from simulators.payment.nexo.journal import RUNNING, Journal

log = logging.getLogger(__name__)

Outgoing = Callable[[Message, bytes], bytes | None]


@dataclass
class SimConfig:
    """How the simulated terminal listens and misbehaves. Fields may be changed while it runs."""

    state: str | Path
    host: str = "127.0.0.1"
    port: int = 0
    """0 = a free port (see ``NexoSimulator.address``)."""
    poi_id: str = "POI1"
    max_frame: int = MAX_FRAME
    outgoing: Outgoing | None = None
    """Fault hook: called with each outgoing message and its framed bytes; returns the bytes
    to send (change them to corrupt the frame) or ``None`` to drop the message."""


class _Aborted(Exception):
    pass


@dataclass
class _Operation:
    sale_id: str
    category: MessageCategory
    service_id: str
    abort: threading.Event = field(default_factory=threading.Event)
    authorising: bool = False


def _started() -> str:
    return datetime.now().replace(microsecond=0).isoformat()


class NexoSimulator:
    """The terminal. ``start()`` serves in a background thread; ``stop()`` ends it."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.model = TerminalModel(config.state)
        self.journal = Journal(config.state)
        self._busy = threading.Lock()
        self._current: _Operation | None = None
        self._stopping = threading.Event()
        self._sessions: set[_Session] = set()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._display_ids = itertools.count(1)
        self._recover()
        self._server = _Server(self, (config.host, config.port))
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> NexoSimulator:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="nexo-sim",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        current = self._current
        if current is not None:
            current.abort.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            sessions, workers = list(self._sessions), list(self._workers)
        for session in sessions:
            session.kill()
        for worker in workers:
            worker.join(timeout=5)

    def __enter__(self) -> NexoSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- dispatch (reader thread) ----------------------------------------------------------

    def handle(self, session: _Session, message: Message) -> None:
        header = message.MessageHeader
        if header.MessageType is not MessageType.REQUEST:
            return  # the sale system answering a display or an event: nothing to do
        category = header.MessageCategory
        if header.ServiceID is None and category is not MessageCategory.ABORT:
            answer = self._failure(message, poi.failure(ErrorCondition.MESSAGE_FORMAT, "ServiceID"))
            if answer is not None:
                session.send(answer)
            return
        if category is MessageCategory.LOGIN:
            self._login(session, message)
            return
        if session.sale_id is None or header.SaleID != session.sale_id:
            answer = self._failure(message, poi.failure(ErrorCondition.LOGGED_OUT))
            if answer is not None:
                session.send(answer)
            return
        handlers: dict[MessageCategory, Callable[[_Session, Message], None]] = {
            MessageCategory.PAYMENT: self._payment,
            MessageCategory.REVERSAL: self._reversal,
            MessageCategory.RECONCILIATION: self._reconciliation,
            MessageCategory.ABORT: self._abort,
            MessageCategory.TRANSACTION_STATUS: self._status,
        }
        handler = handlers.get(category)
        if handler is None:
            session.reject(f"{category.value} requests are not supported by this POI")
            return
        handler(session, message)

    @staticmethod
    def _failure(request: Message, response: Response) -> Message | None:
        """``request``'s response type carrying a failure, or ``None`` if it has none (Abort)."""
        body: Any
        match request.body:
            case PaymentRequest(SaleData=sale):
                body = PaymentResponse(Response=response, SaleData=sale)
            case ReversalRequest():
                body = ReversalResponse(Response=response)
            case TransactionStatusRequest():
                body = TransactionStatusResponse(Response=response)
            case _:
                name = request.MessageHeader.MessageCategory
                if name is MessageCategory.LOGIN:
                    body = LoginResponse(Response=response)
                elif name is MessageCategory.RECONCILIATION:
                    body = ReconciliationResponse(Response=response)
                else:
                    return None
        return poi.reply(request, body)

    def _login(self, session: _Session, message: Message) -> None:
        header = message.MessageHeader
        poi_id = header.POIID
        if poi_id != self.config.poi_id:
            session.send(poi.reply(message, LoginResponse(Response=poi.failure(ErrorCondition.NOT_ALLOWED, "POIID"))))
            return
        session.sale_id = header.SaleID
        session.send(poi.reply(message, LoginResponse(Response=Response(Result=Result.SUCCESS),
                                                      POISystemData=POISystemData(DateTime=poi.now()))))

    def _begin(self, session: _Session, message: Message) -> _Operation | None:
        if not self._busy.acquire(blocking=False):
            answer = self._failure(message, poi.failure(ErrorCondition.BUSY))
            if answer is not None:
                session.send(answer)
            return None
        header = message.MessageHeader
        assert header.ServiceID is not None
        self._current = _Operation(header.SaleID, header.MessageCategory, header.ServiceID)
        return self._current

    def _spawn(self, target: Callable[[], Callable[[], None]]) -> None:
        """Run ``target`` as the terminal's one operation; what it returns (sending the answer)
        runs after the terminal is free again, so a Sale system that reacts at once is not Busy."""

        def run() -> None:
            after: Callable[[], None] = lambda: None  # noqa: E731
            try:
                after = target()
            except Exception:
                log.exception("nexo simulator: operation failed; its journal row stays 'running'")
            finally:
                self._current = None
                self._busy.release()
            after()

        worker = threading.Thread(target=run, name="nexo-sim-op", daemon=True)
        with self._lock:
            self._workers = [w for w in self._workers if w.is_alive()]
            self._workers.append(worker)
        worker.start()

    def _journaled(self, session: _Session, message: Message, work: Callable[[_Operation], tuple[Message, bool]]) -> None:
        op = self._begin(session, message)
        if op is None:
            return
        try:
            self.journal.begin(op.sale_id, op.category.value, op.service_id, encode(message), _started())
        except Exception:
            self._current = None
            self._busy.release()
            raise

        def run() -> Callable[[], None]:
            answer, lost = work(op)
            self.journal.finish(op.sale_id, op.category.value, op.service_id, encode(answer))
            return session.kill if lost else lambda: session.send(answer)

        self._spawn(run)

    def _payment(self, session: _Session, message: Message) -> None:
        self._journaled(session, message, lambda op: self._run_payment(session, message, op))

    def _reversal(self, session: _Session, message: Message) -> None:
        self._journaled(session, message, lambda op: self._run_reversal(session, message, op))

    def _reconciliation(self, session: _Session, message: Message) -> None:
        if self._begin(session, message) is None:
            return
        def run() -> Callable[[], None]:
            answer = self._run_reconciliation(message)
            return lambda: session.send(answer)

        self._spawn(run)

    def _abort(self, session: _Session, message: Message) -> None:
        ref: MessageReference = message.body.MessageReference
        op = self._current
        if (op is not None and op.category is ref.MessageCategory and op.service_id == ref.ServiceID
                and op.sale_id == (ref.SaleID or message.MessageHeader.SaleID)):
            op.abort.set()

    def _status(self, session: _Session, message: Message) -> None:
        request: TransactionStatusRequest = message.body
        ref = request.MessageReference
        sale_id = message.MessageHeader.SaleID
        if ref is None:
            row = self.journal.last_done(sale_id)
        else:
            row = self.journal.get(ref.SaleID or sale_id, ref.MessageCategory.value, ref.ServiceID)
        if row is None:
            body = TransactionStatusResponse(Response=poi.failure(ErrorCondition.NOT_FOUND), MessageReference=ref)
        elif row.state == RUNNING or row.response is None:
            body = TransactionStatusResponse(Response=poi.failure(ErrorCondition.IN_PROGRESS), MessageReference=ref)
        else:
            stored = decode(row.response)
            repeated = stored.body
            if not request.ReceiptReprintFlag:
                repeated = repeated.model_copy(update={"PaymentReceipt": ()})
            is_payment = isinstance(repeated, PaymentResponse)
            body = TransactionStatusResponse(
                Response=Response(Result=Result.SUCCESS),
                MessageReference=MessageReference(
                    MessageCategory=stored.MessageHeader.MessageCategory, ServiceID=row.service_id,
                    SaleID=row.sale_id, POIID=stored.MessageHeader.POIID,
                ),
                RepeatedMessageResponse=RepeatedMessageResponse(
                    MessageHeader=stored.MessageHeader,
                    RepeatedResponseMessageBody=RepeatedResponseMessageBody(
                        PaymentResponse=repeated if is_payment else None,
                        ReversalResponse=None if is_payment else repeated,
                    ),
                ),
            )
        session.send(poi.reply(message, body))

    # --- operations (worker thread) --------------------------------------------------------

    def _model_for(self, op: _Operation) -> TerminalModel:
        def sleep(seconds: float) -> None:
            if op.authorising:
                self._stopping.wait(seconds)  # the bank was asked: its answer stands
            elif op.abort.wait(seconds):
                raise _Aborted

        return TerminalModel(self.config.state, sleep=sleep)

    def _on_stage(self, session: _Session, op: _Operation) -> Callable[[str], None]:
        def on_stage(stage: str) -> None:
            if stage == AUTHORISING:
                op.authorising = True
            if stage == PIN_ENTRY:
                session.send(poi.event("CardInserted", op.sale_id, self.config.poi_id))
            session.send(poi.display(stage, op.sale_id, self.config.poi_id, f"D{next(self._display_ids) % 10**9}"))

        return on_stage

    def _original(self, reference: str) -> Entry | None:
        """The purchase a Reversal or refund names: by POI transaction id, else by sale reference."""
        purchases = [e for e in self.model.ledger() if e.kind == PURCHASE]
        by_id = [e for e in purchases if e.rrn == reference]
        by_sale = [e for e in purchases if e.order == reference]
        found = by_id or by_sale
        return found[-1] if found else None

    def _payment_body(self, sale: SaleData, entry: Entry | None, response: Response) -> PaymentResponse:
        if entry is None:
            return PaymentResponse(Response=response, SaleData=sale)
        return PaymentResponse(
            Response=response, SaleData=sale, POIData=poi.poi_data(entry), PaymentResult=poi.payment_result(entry),
            PaymentReceipt=(poi.receipt(self.model.rules(), entry),),
        )

    def _reversal_body(self, entry: Entry | None, response: Response) -> ReversalResponse:
        if entry is None:
            return ReversalResponse(Response=response)
        return ReversalResponse(Response=response, POIData=poi.poi_data(entry), ReversedAmount=poi.amount(entry.amount_kop),
                                PaymentReceipt=(poi.receipt(self.model.rules(), entry),))

    def _run_payment(self, session: _Session, message: Message, op: _Operation) -> tuple[Message, bool]:
        request: PaymentRequest = message.body
        sale = request.SaleData
        amounts = request.PaymentTransaction.AmountsReq
        if amounts.Currency != "RUB":
            return poi.reply(message, self._payment_body(sale, None, poi.failure(ErrorCondition.NOT_ALLOWED,
                                                                                 "Currency"))), False
        payment_type = request.PaymentData.PaymentType
        if payment_type not in ("Normal", "Refund"):
            return poi.reply(message, self._payment_body(sale, None, poi.failure(ErrorCondition.NOT_ALLOWED,
                                                                                 "PaymentType"))), False
        original_rrn = ""
        original = request.PaymentData.OriginalPOITransaction
        if payment_type == "Refund" and original is not None:
            found = self._original(original.POITransactionID.TransactionID)
            original_rrn = found.rrn if found is not None else original.POITransactionID.TransactionID
        try:
            decision = self._model_for(op).run(
                REFUND if payment_type == "Refund" else PURCHASE, int(amounts.RequestedAmount * 100),
                sale.SaleTransactionID.TransactionID, original_rrn=original_rrn, on_stage=self._on_stage(session, op),
            )
        except _Aborted:
            return poi.reply(message, self._payment_body(sale, None, poi.failure(ErrorCondition.ABORTED))), False
        answer = poi.reply(message, self._payment_body(sale, decision.entry, poi.outcome(decision.code)))
        return answer, decision.lost

    def _run_reversal(self, session: _Session, message: Message, op: _Operation) -> tuple[Message, bool]:
        request: ReversalRequest = message.body
        original = self._original(request.OriginalPOITransaction.POITransactionID.TransactionID)
        if original is None:
            response = poi.failure(ErrorCondition.NOT_FOUND, "OriginalTransaction")
        elif original.voided:
            response = poi.failure(ErrorCondition.NOT_ALLOWED, "AlreadyReversed")
        elif original.batch != self.model.tape()[0]:
            response = poi.failure(ErrorCondition.NOT_ALLOWED, "BatchClosed")
        else:
            try:
                decision = self._model_for(op).run(VOID, original.amount_kop, original.order,
                                                   original_rrn=original.rrn, on_stage=self._on_stage(session, op))
            except _Aborted:
                return poi.reply(message, self._reversal_body(None, poi.failure(ErrorCondition.ABORTED))), False
            return poi.reply(message, self._reversal_body(decision.entry, poi.outcome(decision.code))), decision.lost
        return poi.reply(message, self._reversal_body(None, response)), False

    def _run_reconciliation(self, message: Message) -> Message:
        self._stopping.wait(self.model.rules().latency)
        code, totals = self.model.reconcile()
        if totals is None:
            return poi.reply(message, ReconciliationResponse(Response=poi.outcome(code)))
        lines = tuple(
            PaymentTotals(TransactionType=kind, TransactionCount=count, TransactionAmount=poi.amount(kop))
            for kind, (count, kop) in (("Debit", totals.purchases), ("Credit", totals.refunds),
                                       ("ReverseDebit", totals.voids))
        )
        return poi.reply(message, ReconciliationResponse(
            Response=Response(Result=Result.SUCCESS), POIReconciliationID=str(totals.batch),
            TransactionTotals=(TransactionTotals(PaymentTotals=lines),),
        ))

    # --- restart -------------------------------------------------------------------------

    def _recover(self) -> None:
        """Rows a previous run left ``running``: the ledger says whether money moved."""
        for row in self.journal.running():
            request = decode(row.request)
            since = datetime.fromisoformat(row.started)
            ledger = [e for e in self.model.ledger() if e.ts >= since]
            interrupted = poi.failure(ErrorCondition.ABORTED, "Interrupted")
            if isinstance(request.body, PaymentRequest):
                sale = request.body.SaleData
                kind = REFUND if request.body.PaymentData.PaymentType == "Refund" else PURCHASE
                done = [e for e in ledger if e.kind == kind and e.order == sale.SaleTransactionID.TransactionID]
                body: Any = self._payment_body(sale, done[-1], Response(Result=Result.SUCCESS)) if done else \
                    self._payment_body(sale, None, interrupted)
            else:
                original = self._original(request.body.OriginalPOITransaction.POITransactionID.TransactionID)
                voids = [e for e in ledger if e.kind == VOID and original is not None and e.original_rrn == original.rrn]
                body = self._reversal_body(voids[-1], Response(Result=Result.SUCCESS)) if voids else \
                    self._reversal_body(None, interrupted)
            self.journal.finish(row.sale_id, row.category, row.service_id, encode(poi.reply(request, body)))

    def _add(self, session: _Session) -> None:
        with self._lock:
            self._sessions.add(session)

    def _remove(self, session: _Session) -> None:
        with self._lock:
            self._sessions.discard(session)


class _Session:
    """One Sale system connection."""

    def __init__(self, sim: NexoSimulator, sock: socket.socket) -> None:
        self.sim = sim
        self.sock = sock
        self.conn = Connection(sim.config.max_frame)
        self.sale_id: str | None = None
        self._send_lock = threading.Lock()
        self.alive = True

    def serve(self) -> None:
        while self.alive:
            try:
                data = self.sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            self.conn.receive_data(data)
            while self.alive:
                try:
                    event = self.conn.next_event()
                except FrameTooLarge as exc:
                    log.info("nexo simulator: closing a connection that lost its framing: %s", exc)
                    self.kill()
                    return
                except MalformedMessage as exc:
                    self.reject(str(exc))
                    continue
                if event is NEED_DATA:
                    break
                assert isinstance(event, Message)
                try:
                    self.sim.handle(self, event)
                except Exception as exc:
                    log.exception("nexo simulator: cannot handle a message")
                    self.reject(f"internal error: {exc}")
        self.kill()

    def reject(self, reason: str) -> None:
        self.send(poi.event("Reject", self.sale_id or "UNKNOWN", self.sim.config.poi_id, reason[:500]))

    def send(self, message: Message) -> None:
        data: bytes | None = self.conn.send(message)
        hook = self.sim.config.outgoing
        if hook is not None and data is not None:
            data = hook(message, data)
        if data is None or not self.alive:
            return
        with self._send_lock:
            try:
                self.sock.sendall(data)
            except OSError:
                self.alive = False

    def kill(self) -> None:
        self.alive = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, sim: NexoSimulator, address: tuple[str, int]) -> None:
        self.sim = sim
        super().__init__(address, _Handler)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        session = _Session(self.server.sim, sock)
        self.server.sim._add(session)
        try:
            session.serve()
        finally:
            self.server.sim._remove(session)
