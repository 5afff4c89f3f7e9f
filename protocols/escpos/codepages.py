"""``ESC t n`` code page numbers. The number for CP866 differs by vendor; python-escpos's
capabilities profiles (escpos-printer-db) list it per model: 17 on Epson and most clones
(profile ``default``, TM-T88*, TM-T20II, POS-5890, NT-5890K, ZJ-5870, Sunmi-V2, RP-F10),
7 on CT-S651 / RP326 / TH230, 10 on Star (TSP600, SP2000), 11 on OCD-100/300, 59 as an
alternative on several Chinese 58 mm models. Drivers take the number from the profile;
the simulator decodes with ``EPSON_PAGES`` unless configured otherwise."""

from __future__ import annotations

from typing import Final

CP866_EPSON: Final = 17

EPSON_PAGES: Final[dict[int, str]] = {
    0: "cp437",
    2: "cp850",
    3: "cp860",
    4: "cp863",
    5: "cp865",
    16: "cp1252",
    17: "cp866",
    18: "cp852",
    19: "cp858",
    46: "cp1251",
}
