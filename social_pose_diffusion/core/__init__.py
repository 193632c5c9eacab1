"""Conventions every stage shares.

The skeleton, frames and sessions, installed resources, atomic files.
"""
