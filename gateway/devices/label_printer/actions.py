"""Argument schemas of label printer actions.

``print_label`` takes a template name, the template's data and a number of copies. The data
is checked by ``protocols.zpl.build_label`` in the dispatcher thread, so a missing price or a
bad EAN is an ``invalid_args`` reply naming the field before anything is journaled or sent.

There is deliberately no ``print_raw``: raw ZPL from the cloud can carry any printer command
(``^JUF`` factory reset, ``^ND`` network settings, ``~DG`` uploads, ``~JA``), bypasses the
``^FH`` escaping the templates apply to text, and its copy count cannot be checked against
``^PQ`` — so it could neither be made safe nor resumed after paper out. New label layouts are
added as templates in ``protocols.zpl.labels``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.devices.label_printer.const import MAX_COPIES
from protocols.zpl import Template


class PrintLabelArgs(BaseModel):
    """``print_label``: ``template`` (price_tag / weighed / marking), ``data``, ``copies``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template: Template
    data: dict[str, Any]
    copies: int = Field(default=1, ge=1, le=MAX_COPIES)
