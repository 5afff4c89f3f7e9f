"""An independent Shtrih-M driver (pyshtrih, PyPI) runs a whole shift against our simulator.

Our driver and simulator share ``protocols.shtrih``, so a misreading of the vendor protocol
there would pass every other test; pyshtrih was written elsewhere from the vendor document.
It drives the simulator over a real pty (pyserial opens the path, sets 115200 8N1) and over
TCP, and every step is checked on both sides: pyshtrih's parsed answers and the simulator's
FN state and tape.

Where pyshtrih departs from the vendor protocol the test works around it, citing the source:

- 10h: pyshtrih reads "Количество операций в чеке" with the two bytes swapped (it takes byte
  11 as the low byte). Vendor: byte 6 is "младший байт двухбайтного числа", byte 11 "старший"
  (shtrih-m/opos FiscalPrinterDevice.pas Decode10: ``(Ord(Data[11]) shl 8) + Ord(Data[6])``).
- 11h: pyshtrih reads the 6-byte ИНН big-endian (hexlify); the protocol's integers are
  little-endian (OPOS ``Stream.ReadInt(6)``, TBinStream LE; kkmdrv Go: LittleEndian).
- TCP: pyshtrih only opens ``serial.Serial``; we hand its unchanged protocol code pyserial's
  ``socket://`` transport, which is what a serial-over-LAN setup gives it.

Not run: cash in/out (50h/51h) — the simulator does not implement them; FF46/FF45 — pyshtrih
2.0.6 has no "v2" operations (our own driver covers them in tests/drivers/fiscal).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from protocols.shtrih import messages as M
from simulators.fiscal import ShtrihDevice, SimConfig
from simulators.fiscal.device import DOC_RECEIPT, DOC_SHIFT_CLOSE, DOC_SHIFT_OPEN
from simulators.link import PtyEndpoint, TcpEndpoint

pyshtrih = pytest.importorskip("pyshtrih")

NOW = dt.datetime(2026, 3, 2, 9, 0, 0)
TIMEOUT = 3.0


def ops_count(pyshtrih_value: int) -> int:
    """Undo pyshtrih's byte swap of the 10h operation count (see the module docstring)."""
    return (pyshtrih_value >> 8) | (pyshtrih_value & 0xFF) << 8


def inn(pyshtrih_value: int) -> int:
    """Undo pyshtrih's big-endian reading of the 11h ИНН (see the module docstring)."""
    return int.from_bytes(pyshtrih_value.to_bytes(6, "big"), "little")


class Rig:
    def __init__(self, sim: ShtrihDevice, kkm: object, tape: Path) -> None:
        self.sim = sim
        self.kkm = kkm
        self.tape = tape


@pytest.fixture(params=["pty", "tcp"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    tape = tmp_path / "tape.txt"
    sim = ShtrihDevice(SimConfig(state_file=tmp_path / "fn.json", tape_file=tape, clock=lambda: NOW))
    if request.param == "pty":
        pty = PtyEndpoint(sim)
        path = pty.start()
        # Identify as a host does on an unknown port: FCh name → pyshtrih's model class.
        (kkm,) = pyshtrih.discovery(port=path, baudrate=115200)
        assert type(kkm) is pyshtrih.ShtrihM01F
        kkm.timeout = TIMEOUT
        stop = pty.stop
    else:
        tcp = TcpEndpoint(sim)
        host, port = tcp.start()
        url = f"socket://{host}:{port}"
        kkm = pyshtrih.ShtrihM01F(url, 115200, timeout=TIMEOUT)
        kkm.protocol.serial = serial.serial_for_url(
            url, do_not_open=True, timeout=TIMEOUT, write_timeout=TIMEOUT
        )
        stop = tcp.stop
    try:
        kkm.connect()
        yield Rig(sim, kkm, tape)
    finally:
        kkm.disconnect()
        stop()


def test_pyshtrih_runs_a_whole_shift(rig: Rig) -> None:
    kkm, sim = rig.kkm, rig.sim

    # --- identify and status ----------------------------------------------------------------
    info = kkm.dev_info  # FCh, sent by connect() without a password
    assert info["Тип устройства"] == M.DeviceKind.FISCAL_REGISTER
    assert info["Название устройства"] == "ШТРИХ-М-01Ф"
    assert (info["Версия протокола для данного устройства"], info["Язык устройства"]) == (1, 0)

    state = kkm.state()
    assert state["Режим ФР"].state == (M.Mode.SHIFT_CLOSED, 0)
    assert state["Подрежим ФР"].state == M.SubMode.IDLE
    assert state["Флаги ФР"]["Рулон чековой ленты"] == 1
    assert state["Флаги ФР"]["Крышка корпуса ФР"] == 0

    full = kkm.full_state()
    assert full["Заводской номер"] == sim.config.serial_number
    assert inn(full["ИНН"]) == sim.config.inn
    assert (full["Дата"], full["Время"]) == (NOW.date(), NOW.time())
    assert full["Номер последней закрытой смены"] == 0

    fs = kkm.fs_state()
    assert fs["Состояние фазы жизни"]["Открыт фискальный режим"] == 1
    assert fs["Состояние смены"] == "смена закрыта"
    assert bytes(fs["Номер ФН"]).decode("ascii") == sim.fn.fn_number
    assert fs["Номер последнего ФД"] == 0
    assert kkm.fs_expiration_time()["Срок действия"] == dt.date.fromisoformat(sim.fn.expires)

    # --- open shift ---------------------------------------------------------------------------
    kkm.open_shift()
    assert kkm.state()["Режим ФР"].state == (M.Mode.SHIFT_OPEN, 0)
    shift = kkm.fs_shift_params()
    assert (shift["Состояние смены"], shift["Номер смены"], shift["Номер чека"]) == ("смена открыта", 1, 0)
    assert sim.fn.shift_open and sim.fn.shift_number == 1
    assert sim.fn.documents[-1].doc_type == DOC_SHIFT_OPEN

    # --- a sale: three items, one weighed (quantity ×1000: 0.734 kg) ---------------------------
    kkm.open_check(0)
    kkm.sale(("Молоко 3,2% 1 л", 2000, 8990))  # 2 × 89.90 = 179.80
    kkm.sale(("Сыр Российский весовой", 734, 45990))  # 0.734 × 459.90 = 337.5666 → 337.57
    kkm.sale(("Хлеб Бородинский", 1000, 4590))  # 45.90
    state = kkm.state()
    assert state["Режим ФР"].state == (M.Mode.DOCUMENT_OPEN, 0)  # 8.0: open sale receipt
    assert ops_count(state["Количество операций в чеке"]) == 3
    assert kkm.fs_state()["Текущий документ"] == "кассовый чек"
    closed = kkm.close_check(cash=60000)
    assert closed["Сдача"] == 60000 - 56327

    sale = sim.fn.documents[-1]
    assert (sale.doc_type, sale.operation, sale.total, sale.receipt_number) == (DOC_RECEIPT, 1, 56327, 1)
    tape = rig.tape.read_text(encoding="utf-8")
    assert "0.734 x 459.90 = 337.57" in tape
    assert "Сыр Российский весовой" in tape and "ИТОГ 563.27" in tape and "СДАЧА 36.73" in tape

    # --- a return ------------------------------------------------------------------------------
    kkm.open_check(2)
    kkm.return_sale(("Хлеб Бородинский", 1000, 4590))
    assert kkm.state()["Режим ФР"].state == (M.Mode.DOCUMENT_OPEN, 2)  # 8.2: sale return
    assert kkm.close_check(cash=4590)["Сдача"] == 0
    ret = sim.fn.documents[-1]
    assert (ret.doc_type, ret.operation, ret.total, ret.receipt_number) == (DOC_RECEIPT, 2, 4590, 2)
    assert "КАССОВЫЙ ЧЕК / ВОЗВРАТ ПРИХОДА" in rig.tape.read_text(encoding="utf-8")

    # --- X report, FN status and the last document -------------------------------------------
    kkm.x_report()
    tape = rig.tape.read_text(encoding="utf-8")
    assert "СУТОЧНЫЙ ОТЧЁТ БЕЗ ГАШЕНИЯ (X-ОТЧЁТ)" in tape
    assert "ПРИХОД 563.27" in tape and "ВОЗВРАТ ПРИХОДА 45.90" in tape
    assert sim.fn.last_fd == 3  # an X report is not a fiscal document

    fs = kkm.fs_state()
    assert fs["Номер последнего ФД"] == sim.fn.last_fd == 3
    assert fs["Состояние смены"] == "смена открыта"
    assert kkm.fs_shift_params()["Номер чека"] == 2

    found = kkm.fs_find_document_by_num(fs["Номер последнего ФД"])
    assert (found["Тип фискального документа"], found["Получена ли квитанция из ОФД"]) == (
        M.FnDocumentType.RECEIPT,
        0,
    )
    data = bytes(found["Данные фискального документа"])  # pyshtrih leaves it raw
    assert data[:5] == bytes((NOW.year - 2000, NOW.month, NOW.day, NOW.hour, NOW.minute))
    assert int.from_bytes(data[5:9], "little") == ret.fd_number
    assert int.from_bytes(data[9:13], "little") == ret.fiscal_sign
    assert (data[13], int.from_bytes(data[14:19], "little")) == (2, 4590)

    # --- Z report closes the shift ------------------------------------------------------------
    kkm.z_report()
    assert kkm.state()["Режим ФР"].state == (M.Mode.SHIFT_CLOSED, 0)
    assert kkm.full_state()["Номер последней закрытой смены"] == 1
    fs = kkm.fs_state()
    assert (fs["Состояние смены"], fs["Номер последнего ФД"]) == ("смена закрыта", 4)
    z = kkm.fs_find_document_by_num(4)
    assert z["Тип фискального документа"] == M.FnDocumentType.SHIFT_CLOSE
    assert int.from_bytes(bytes(z["Данные фискального документа"])[13:15], "little") == 1  # shift

    assert not sim.fn.shift_open
    assert [d.doc_type for d in sim.fn.documents] == [
        DOC_SHIFT_OPEN,
        DOC_RECEIPT,
        DOC_RECEIPT,
        DOC_SHIFT_CLOSE,
    ]
    assert (sim.fn.sales_total, sim.fn.returns_total) == (56327, 4590)
    assert "ОТЧЁТ О ЗАКРЫТИИ СМЕНЫ" in rig.tape.read_text(encoding="utf-8")
    persisted = ShtrihDevice(SimConfig(state_file=sim.config.state_file)).fn
    assert persisted.last_fd == 4 and persisted.documents[-1].doc_type == DOC_SHIFT_CLOSE


def test_pyshtrih_sees_refusals_as_vendor_errors(rig: Rig) -> None:
    """A sale before the shift is open, and a close with too little cash, come back as the
    vendor error codes pyshtrih knows (3Dh, 45h) and leave the FN untouched."""
    kkm, sim = rig.kkm, rig.sim
    kkm.open_shift()
    kkm.sale(("Батон", 1000, 5000))
    with pytest.raises(pyshtrih.CloseCheckError) as short:
        kkm.close_check(cash=4000)
    assert short.value.code == 0x45
    kkm.cancel_check()
    assert sim.fn.last_fd == 1 and "*** ЧЕК АННУЛИРОВАН ***" in sim.tape
    kkm.z_report()
    with pytest.raises(pyshtrih.ItemSaleError) as closed:
        kkm.sale(("Батон", 1000, 5000))
    assert closed.value.code == 0x3D
    assert sim.fn.last_fd == 2
