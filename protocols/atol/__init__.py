"""ATOL through the driver's JSON tasks sent to the ATOL web server (``/api/v2/requests``).

Sans-I/O: typed task and result models (``tasks``, ``results``), exact-decimal JSON
(``codec``), error codes with Russian texts (``codes``) and the receipt → task builder
(``build``). The HTTP exchange lives in ``drivers.fiscal.atol``; the web server's side in
``simulators.fiscal.atol``.
"""

from protocols.atol.errors import AtolError, LocalProtocolError, RemoteProtocolError

__all__ = ["AtolError", "LocalProtocolError", "RemoteProtocolError"]
