"""Message layouts and conversions shared by rosbags and rclpy messages: keypoint clouds, images, topics."""
