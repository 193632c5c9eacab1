"""Subcommands of `social-pose`.

Each module has ``register(subparsers)`` and keeps heavy imports inside its run function.
"""
