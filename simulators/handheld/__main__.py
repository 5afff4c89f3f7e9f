"""``python -m simulators.handheld --url http://gw:8081 --terminal tsd1 --task T --count 20``: load run."""

from __future__ import annotations

import argparse
import sys

from simulators.handheld.load import LoadConfig, run_load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Симулятор ТСД: N терминалов выполняют задания инвентаризации.")
    parser.add_argument("--url", required=True, help="адрес шлюза, например http://127.0.0.1:8081")
    parser.add_argument("--terminal", action="append", required=True, help="id терминала (повторяйте)")
    parser.add_argument("--task", action="append", required=True, help="id задания для каждого терминала")
    parser.add_argument("--barcode", action="append", required=True, help="штрихкод из задания (повторяйте)")
    parser.add_argument("--scans", type=int, default=10)
    parser.add_argument("--pin", default="2580")
    args = parser.parse_args(argv)
    if len(args.task) != len(args.terminal):
        parser.error("нужно по одному --task на каждый --terminal")
    result = run_load(LoadConfig(args.url, tuple(args.terminal), tuple(args.task), tuple(args.barcode),
                                 scans=args.scans, pin=args.pin))
    lines = sum(len(v) for v in result.sent.values())
    print(f"строк принято: {lines}, повторов распознано: {result.duplicates_answered}, "
          f"ошибок: {len(result.errors)}, {result.seconds:.1f} с")
    for error in result.errors:
        print(error, file=sys.stderr)
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
