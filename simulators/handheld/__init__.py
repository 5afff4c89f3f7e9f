"""A scripted handheld (ТСД) client over the gateway's HTTP/WebSocket API, for tests and load."""

from simulators.handheld.client import HandheldClient, HandheldRefused, Scan
from simulators.handheld.load import LoadConfig, LoadResult, run_load

__all__ = ["HandheldClient", "HandheldRefused", "LoadConfig", "LoadResult", "Scan", "run_load"]
