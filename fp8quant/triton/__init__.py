"""Triton backends: triton/common.py holds what every op shares, one module per op."""
