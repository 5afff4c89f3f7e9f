"""MtSicsScale over a scripted in-memory link: error mapping, retries, units, the factory."""

from decimal import Decimal

import pytest

from drivers.errors import DeviceProtocolError, DeviceRejected, DeviceTimeout, DriverConfigError
from drivers.scale import SCALE_DRIVERS, create_scale, open_scale
from drivers.scale.mtsics import (
    MtSicsLogicalError,
    MtSicsScale,
    MtSicsSyntaxError,
    MtSicsTransmissionError,
)
from drivers.transport import Transport


class ScriptedLink:
    """A Transport that answers each written command with the next scripted bytes."""

    def __init__(self, *answers: bytes) -> None:
        self.answers = list(answers)
        self.written: list[bytes] = []
        self.inbox = b""
        self.resets = 0
        self.is_open = False

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False

    def write(self, data: bytes) -> None:
        self.written.append(data)
        if self.answers:
            self.inbox += self.answers.pop(0)

    def read(self, max_bytes: int, timeout: float) -> bytes:
        out, self.inbox = self.inbox[:max_bytes], self.inbox[max_bytes:]
        return out

    def read_until(self, terminator: bytes, timeout: float, max_bytes: int = 4096) -> bytes:
        raise NotImplementedError

    def reset_input(self) -> None:
        self.resets += 1
        self.inbox = b""


def _scale(*answers: bytes) -> tuple[MtSicsScale, ScriptedLink]:
    link = ScriptedLink(*answers)
    assert isinstance(link, Transport)
    scale = MtSicsScale(link, timeout=0.05, poll_interval=0)
    scale.open()
    return scale, link


def test_grams_are_converted_to_kg_with_three_decimals() -> None:
    scale, link = _scale(b"S S    1234.5 g\r\n")
    reading = scale.weigh()
    assert reading.net == Decimal("1.235") and reading.stable
    assert link.written == [b"S\r\n"]


def test_negative_zero_is_plain_zero() -> None:
    scale, _ = _scale(b"S S     -0.000 kg\r\n")
    assert str(scale.weigh().net) == "0.000"


@pytest.mark.parametrize(
    ("answer", "error"),
    [(b"ES\r\n", MtSicsSyntaxError), (b"EL\r\n", MtSicsLogicalError)],
)
def test_device_errors_are_rejections_in_russian(answer: bytes, error: type[DeviceRejected]) -> None:
    scale, _ = _scale(answer)
    with pytest.raises(error, match="Весы") as info:
        scale.zero()
    assert isinstance(info.value, DeviceRejected)


def test_transmission_error_is_retried_once() -> None:
    scale, link = _scale(b"ET\r\n", b"Z A\r\n")
    scale.zero()
    assert link.written == [b"Z\r\n", b"Z\r\n"]
    scale2, _ = _scale(b"ET\r\n", b"ET\r\n")
    with pytest.raises(MtSicsTransmissionError):
        scale2.zero()


def test_garbage_is_flushed_and_the_command_resent() -> None:
    scale, link = _scale(b"\xfe\xfe\r\n", b"TAC A\r\n")
    scale.clear_tare()
    assert link.written == [b"TAC\r\n", b"TAC\r\n"]
    assert link.resets >= 2  # open + resync


def test_garbage_twice_is_a_protocol_error() -> None:
    scale, _ = _scale(b"junk\r\n", b"more junk\r\n")
    with pytest.raises(DeviceProtocolError):
        scale.weigh(stable=False)


def test_silence_is_a_timeout() -> None:
    scale, _ = _scale()
    with pytest.raises(DeviceTimeout, match="SI"):
        scale.weigh(stable=False)


def test_unknown_unit_is_reported() -> None:
    scale, _ = _scale(b"S S      1.000 lb\r\n")
    with pytest.raises(DeviceProtocolError, match="lb"):
        scale.weigh()


def test_info_parses_type_with_spaces_from_the_right() -> None:
    scale, _ = _scale(b'I2 A "WXS205SDU WXA-Bridge 220.00900 g"\r\n', b'I3 A "1.10 18.6.4"\r\n', b'I4 A "B207696838"\r\n')
    info = scale.info()
    assert info.model == "WXS205SDU WXA-Bridge"
    assert info.capacity == Decimal("0.220")
    assert info.serial == "B207696838" and info.firmware == "1.10 18.6.4"


def test_set_tare_sends_kg_with_three_decimals() -> None:
    scale, link = _scale(b"TA A      0.250 kg\r\n")
    scale.set_tare(Decimal("0.25"))
    assert link.written == [b"TA 0.250 kg\r\n"]
    with pytest.raises(DriverConfigError):
        scale.set_tare(Decimal("-1"))


def test_factory() -> None:
    assert "mtsics" in SCALE_DRIVERS
    with pytest.raises(DriverConfigError, match="massa"):
        open_scale("massa", "/dev/ttyS0")
    with pytest.raises(DriverConfigError, match="speed"):
        create_scale("mtsics", "/dev/ttyS0", {"speed": 9600})
    with pytest.raises(DriverConfigError):
        create_scale("mtsics", "/dev/ttyS0", {"timeout": -1})
    with pytest.raises(DriverConfigError):
        create_scale("mtsics", "/dev/ttyS0", {"baudrate": "fast"})
    assert isinstance(create_scale("mtsics", "tcp://127.0.0.1:1", {"timeout": 2}), MtSicsScale)
