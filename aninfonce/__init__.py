"""Reproduction suite for Rusak et al., InfoNCE: Identifying the Gap Between Theory and Practice (AISTATS 2025)."""

__version__ = "0.1.0"
