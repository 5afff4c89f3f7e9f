"""ATOL register behind the ATOL web server (``/api/v2/requests``): device model + HTTP server."""

from simulators.fiscal.atol.device import AtolDevice, AtolSimConfig
from simulators.fiscal.atol.server import AtolWebServer

__all__ = ["AtolDevice", "AtolSimConfig", "AtolWebServer"]
