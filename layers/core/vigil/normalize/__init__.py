"""One normalizer module per source. A normalizer is total: it returns events or rejections, never raises."""

from vigil.normalize.common import Rejection

__all__ = ["Rejection"]
