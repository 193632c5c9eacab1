"""Everything that imports rclpy.

Node helpers, message kits, the process launcher, replay and the nodes.
"""
