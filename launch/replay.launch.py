"""Replay a session bag into the facilitator graph with simulated time, recording its outputs.

    ros2 launch social_pose_diffusion replay.launch.py bag:=/tmp/s out:=/tmp/replay_out

``ros2 bag play --clock`` publishes only the bag's camera stream (the recorded
keypoints and ground truth stay out so the graph regenerates them); camera
topic, transport and facilitator seat default to what the bag holds. Parameters:
config/facilitator.yaml, config/replay.yaml (use_sim_time), then ``params_file``.
The launch shuts down by itself when the bag ends. Scoring: ``social-pose
evaluate --replay BAG`` runs the same graph through social_pose_diffusion.ros.launcher.
"""

from social_pose_diffusion.ros.launch_graph import describe


def generate_launch_description():
    return describe('replay')
