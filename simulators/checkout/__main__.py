"""``python -m simulators.checkout URL LANE LOGIN PIN BARCODE… [--sales N] [--seed S]``: a scripted cashier."""

from __future__ import annotations

import argparse
import json

from simulators.checkout.client import CashierClient
from simulators.checkout.load import run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators.checkout", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("lane")
    parser.add_argument("login")
    parser.add_argument("pin")
    parser.add_argument("barcodes", nargs="+")
    parser.add_argument("--sales", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    client = CashierClient(args.url, args.lane)
    client.wait_up()
    client.login(args.login, args.pin)
    client.wait_ready()
    print(json.dumps(run(client, args.barcodes, sales=args.sales, seed=args.seed).as_dict(), ensure_ascii=False))


if __name__ == "__main__":
    main()
