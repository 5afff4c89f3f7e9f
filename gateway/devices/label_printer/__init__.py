"""The label printer family: ``print_label`` by template (resumable after paper out), ``status``."""

from gateway.devices.label_printer.binding import LabelPrinterBinding

__all__ = ["LabelPrinterBinding"]
