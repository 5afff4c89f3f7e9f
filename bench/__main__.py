"""``python -m bench``: every benchmark in sequence, then one summary table.

``python -m bench [--quick]`` — ``--quick`` runs smaller sizes (a smoke test, not figures).
The inventory ledger benchmark runs too when ``bench/inventory_ledger.py`` exists (its ``main``
is called with a small size). Each benchmark is bounded (well under a minute at default sizes);
the machine is shared, so run it a few times and keep the medians.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import sys
from typing import Any


def _inventory(small: int) -> dict[str, Any] | None:
    """Run ``bench/inventory_ledger.py`` (another engineer's) with a small size, if it exists.

    Its ``main`` parses the command line itself: it gets ``--rows small`` (when it has that
    option) and nothing of ours. What it prints is its report; the table only says it ran.
    """
    if importlib.util.find_spec("bench.inventory_ledger") is None:
        return None
    module = importlib.import_module("bench.inventory_ledger")
    entry = getattr(module, "main", None)
    if entry is None:
        return None
    argv = sys.argv
    source = inspect.getsource(module)
    sys.argv = [f"{argv[0]} inventory_ledger", *(["--rows", str(small)] if '"--rows"' in source else [])]
    try:
        result = entry()
    finally:
        sys.argv = argv
    return result if isinstance(result, dict) else {"figure": "see its report above"}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Vitrina benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the benchmarks run")
    args = parser.parse_args()
    from bench import command_roundtrip, events_throughput

    rows: list[tuple[str, str, str, str, str]] = []
    cmd = command_roundtrip.main(60 if args.quick else 300)
    print()
    rows.append((
        "command round trip p50 (HTTP→gw→scale→HTTP)", f"{cmd['command']['p50']:.2f} ms",
        f"floor {cmd['floor_ms']:.2f} ms", f"{cmd['ratio']:.2f}×", f"≤ {command_roundtrip.TARGET_RATIO}× floor",
    ))
    rows.append(("command round trip p99", f"{cmd['command']['p99']:.2f} ms", "", "", ""))
    rows.append((
        "  HTTP overhead p50 (auth'd GET, not in floor)", f"{cmd['http']['p50']:.2f} ms",
        f"floor+http {cmd['floor_ms'] + cmd['http']['p50']:.2f} ms", f"{cmd['ratio_with_http']:.2f}×", "",
    ))
    ev = events_throughput.main(5_000 if args.quick else 50_000)
    print()
    rows.append((
        f"events outbox→{ev['database']} ({ev['n']})", f"{ev['events_per_s']:.0f}/s",
        f"paho {ev['paho_per_s']:.0f}/s, insert {ev['insert_per_s']:.0f}/s", f"{ev['ratio']:.2f}×", "≥ 5000/s",
    ))
    inv = _inventory(10_000 if args.quick else 100_000)
    if inv is not None:
        print()
        rows.append(("inventory ledger", str(inv.get("figure", inv))[:40], str(inv.get("baseline", ""))[:40],
                     str(inv.get("ratio", "")), str(inv.get("target", ""))))
    from bench import checkout  # lane sales/s, cloud ingestion of sales, shift close with 1,000 receipts

    co = checkout.main(8 if args.quick else 60, 200 if args.quick else 600, 200 if args.quick else 1_000)
    print()
    rows += [
        (f"lane card sales ({co['lane']['n']}, 3 lines)", f"{co['lane']['sales_per_s']:.2f}/s",
         f"driver {co['lane']['driver_per_s']:.0f} receipts/s", f"{co['lane']['ratio']:.3f}×", ""),
        (f"sales ingestion→{co['ingest']['database']} ({co['ingest']['n']}, 5 lines)",
         f"{co['ingest']['ingest_per_s']:.0f}/s", f"raw insert {co['ingest']['raw_per_s']:.0f}/s",
         f"{co['ingest']['ratio']:.3f}×", "≥ 1000/s"),
        (f"shift close ({co['close']['receipts']} receipts)", f"{co['close']['close_s'] * 1000:.0f} ms",
         f"Z alone {co['close']['z_alone_s'] * 1000:.0f} ms", f"{co['close']['ratio']:.1f}×", "< 1000 ms"),
    ]
    header = ("figure", "value", "baseline", "ratio", "target")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("{:<" + str(w) + "}" for w in widths)
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))


if __name__ == "__main__":
    main()
