"""The gateway's local server for handhelds (ТСД): task store, HTTP/WebSocket API, mobile page.

Modules: ``models`` (the task protocol), ``scanning`` (what a scan means for a task),
``store`` (SQLite), ``hub`` (sessions, tasks, events), ``server`` (FastAPI + uvicorn),
``service`` (what the gateway runtime starts/stops), ``static/`` (the page). The bus side is
``gateway.devices.handheld``. Nothing is imported here, so the device family can import the
hub without pulling in the server.
"""
