"""Templates of the python-backend ``model.py`` files, copied into the generated repository.

They import ``triton_python_backend_utils``, which exists only inside Triton's python backend, so
they are never imported here; their logic lives in :mod:`swintormer.serving.steps` and
:mod:`swintormer.serving.glue`.
"""
