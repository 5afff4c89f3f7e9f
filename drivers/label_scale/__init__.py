"""Label scales (scales that print labels and keep a PLU table): CAS CL series."""

from drivers.label_scale.cas import LabelScale, LabelScaleRejected, PluResult

__all__ = ["LabelScale", "LabelScaleRejected", "PluResult"]
