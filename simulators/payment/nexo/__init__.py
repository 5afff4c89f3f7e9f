"""A nexo Retailer (Sale to POI) card terminal over TCP, backed by the shared terminal model.

    with NexoSimulator(SimConfig(state="nexo.db", port=0)) as sim:
        host, port = sim.address

or ``python -m simulators.payment.nexo --port 7777 --state nexo.db``. The behaviour is in
``server``; the ledger of what the bank charged is ``sim.model`` (``simulators.payment.model``).
"""

from simulators.payment.nexo.server import NexoSimulator, SimConfig

__all__ = ["NexoSimulator", "SimConfig"]
