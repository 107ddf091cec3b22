"""Real photographs for tests: the ones scikit-image ships (nothing is downloaded)."""

from __future__ import annotations

import numpy as np


def photo(name: str) -> np.ndarray:
    """A real photograph bundled with scikit-image, ``uint8 [H, W, 3]``."""
    from skimage import data

    return getattr(data, name)()
