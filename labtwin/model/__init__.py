"""The model backend: pure functions and SimPy processes over a Cloud.

Never touches the host and never reads what an emulation did.
"""
