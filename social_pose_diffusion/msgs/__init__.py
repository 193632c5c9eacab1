"""Message layouts and conversions shared by rosbags and rclpy messages.

Keypoint clouds, images, topics.
"""
