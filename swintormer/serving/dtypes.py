"""The one dtype table of the serving stack: Triton's tensor names, NumPy's, and the config's types.

The image dtypes (``UINT8``, ``UINT16``, ``FP32``) are those the ensembles accept and return, in
the order the geometry vector indexes them; the others are the network models' tensor types.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swintormer.errors import SwintormerError

__all__ = ["DTYPES", "IMAGE_DTYPES", "DType", "config_type", "ensemble_name", "image_dtype_name"]


@dataclass(frozen=True)
class DType:
    triton: str  # the name on the wire ("UINT8")
    numpy: str  # the NumPy / export-spec name ("uint8")
    config: str  # the model config's data type ("TYPE_UINT8")
    image: bool = False  # an image dtype the ensembles serve


DTYPES = (
    DType("UINT8", "uint8", "TYPE_UINT8", image=True),
    DType("UINT16", "uint16", "TYPE_UINT16", image=True),
    DType("FP32", "float32", "TYPE_FP32", image=True),
    DType("FP16", "float16", "TYPE_FP16"),
    DType("INT64", "int64", "TYPE_INT64"),
    DType("INT32", "int32", "TYPE_INT32"),
    DType("BYTES", "bytes", "TYPE_STRING"),
)
#: Triton name -> NumPy dtype of the images the ensembles accept and return (``deblur_<name>``)
IMAGE_DTYPES: dict[str, np.dtype] = {d.triton: np.dtype(d.numpy) for d in DTYPES if d.image}


def config_type(numpy_name: str) -> str:
    """``"float32" -> "TYPE_FP32"``: a spec's dtype as a Triton config data type."""
    for d in DTYPES:
        if d.numpy == numpy_name:
            return d.config
    raise SwintormerError(f"no Triton type for dtype {numpy_name!r}")


def image_dtype_name(dtype: np.dtype) -> str:
    """``uint8 -> "UINT8"``: the Triton name of an image dtype the ensembles serve."""
    for name, np_dtype in IMAGE_DTYPES.items():
        if np.dtype(dtype) == np_dtype:
            return name
    raise SwintormerError(f"images must be uint8, uint16 or float32, got {np.dtype(dtype)}")


def ensemble_name(dtype_name: str) -> str:
    """``"UINT8" -> "deblur_uint8"``: the model a client calls for images of that dtype."""
    return f"deblur_{dtype_name.lower()}"
