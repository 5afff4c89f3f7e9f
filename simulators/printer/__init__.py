"""Simulated ESC/POS receipt printer (TCP 9100 / pty) writing documents as UTF-8 text."""
