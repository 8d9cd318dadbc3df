"""The settings of one SimCLR run and the losses the image tables compare
(both in :mod:`aninfonce.specs`, which needs no torch)."""

from ...specs import IMAGE_LOSSES as LOSSES
from ...specs import ImageSSLSpec

__all__ = ["LOSSES", "ImageSSLSpec"]
