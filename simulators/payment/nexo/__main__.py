"""``python -m simulators.payment.nexo [--host H] [--port P] [--state FILE] [--poi-id ID] [--latency S]``.

Prints ``listening on HOST:PORT`` once it accepts connections (``--port 0`` picks a free
port), serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from simulators.payment.nexo.server import NexoSimulator, SimConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.payment.nexo", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7777)
    parser.add_argument("--state", default=os.environ.get("VITRINA_NEXO_STATE", "nexo-state.db"))
    parser.add_argument("--poi-id", default="POI1")
    parser.add_argument("--latency", type=float, default=None, help="seconds per card operation (model rule)")
    args = parser.parse_args(argv)
    try:
        sim = NexoSimulator(SimConfig(state=args.state, host=args.host, port=args.port, poi_id=args.poi_id))
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    if args.latency is not None:
        sim.model.configure(latency=args.latency)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    sim.start()
    host, port = sim.address
    print(f"listening on {host}:{port}", flush=True)
    done.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
