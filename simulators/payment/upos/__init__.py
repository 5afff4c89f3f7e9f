"""A Sberbank UPOS ``sb_pilot`` stand-in: the same command line, files and result codes.

Run it as ``python -m simulators.payment.upos --state STATE.db <op> [amount] [KEY=value…]`` in
the working directory where the driver expects ``e`` and ``p``. See ``cli`` for the contract.
"""
