"""Devices: one worker thread per device, one folder per device family (``scale/``, …)."""
