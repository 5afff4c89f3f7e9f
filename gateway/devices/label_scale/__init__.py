"""The label-scale family: PLU table upload and delete on a scale that prints labels (CAS CL)."""

from gateway.devices.label_scale.binding import LabelScaleBinding

__all__ = ["LabelScaleBinding"]
