"""Everything that imports rclpy: node helpers, message kits, the process launcher, replay and the nodes."""
