"""Composition root: the ``vitrina`` CLI and the one-machine ``up`` runner.

This package is the only one allowed to import every layer (cloud, gateway, simulators): it
wires them together for a single machine. Business code never lives here.
"""
