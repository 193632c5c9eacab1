"""Conventions every stage shares: the skeleton, frames and sessions, installed resources, atomic files."""
