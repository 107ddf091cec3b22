"""Serving with Triton Inference Server: the ensemble's steps, its generated model repository,
the bundled-server launcher and the client. The python-backend ``model.py`` files are thin
wrappers over :mod:`swintormer.serving.steps`, which is tested without a server.
"""
