"""social_pose_diffusion: a diffusion imitation-learning group-discussion facilitator on ROS 2."""
