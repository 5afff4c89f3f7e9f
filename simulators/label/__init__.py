"""Simulated ZPL label printer (TCP 9100 / pty) with PNG previews."""
