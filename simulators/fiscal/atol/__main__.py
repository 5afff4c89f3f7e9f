"""``python -m simulators.fiscal.atol --port 16732 --state fn.json``: an ATOL web server for testers.

Keyboard: ``paper`` toggles paper out/in, ``cover`` the cover, ``slow <seconds>`` sets the
queue delay, ``km <code> valid|invalid|no_connection``, ``q`` quits.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from protocols.atol.results import DEFAULT_PORT
from simulators.fiscal.atol import AtolDevice, AtolSimConfig, AtolWebServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Симулятор веб-сервера ДТО АТОЛ с ККТ и ФН")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--state", type=Path, help="Файл состояния ФН (JSON)")
    parser.add_argument("--tape", type=Path, help="Файл чековой ленты (текст)")
    args = parser.parse_args(argv)
    dev = AtolDevice(AtolSimConfig(state_file=args.state, tape_file=args.tape))
    journal = args.state.with_suffix(".requests.json") if args.state else None
    server = AtolWebServer(dev, args.host, args.port, journal=journal)
    print(f"Веб-сервер ДТО АТОЛ: {server.start()}/api/v2/requests")
    try:
        for raw in sys.stdin:
            parts = raw.split()
            if not parts:
                continue
            if parts[0] == "q":
                break
            with dev.lock:
                if parts[0] == "paper":
                    (dev.paper_in if not dev.paper else dev.paper_out)()
                    print("Бумага есть" if dev.paper else "Нет бумаги")
                elif parts[0] == "cover":
                    (dev.close_cover if dev.cover_open else dev.open_cover)()
                    print("Крышка открыта" if dev.cover_open else "Крышка закрыта")
                elif parts[0] == "slow" and len(parts) == 2:
                    server.delay = float(parts[1])
                    print(f"Задержка очереди {server.delay} с")
                elif parts[0] == "km" and len(parts) == 3:
                    dev.marking[parts[1]] = parts[2]
                    print(f"КМ {parts[1]}: {parts[2]}")
                else:
                    print("Команды: paper, cover, slow <с>, km <код> valid|invalid|no_connection, q")
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
