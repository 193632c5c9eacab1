"""Facilitator poses to the joint angles of a robot or avatar."""
