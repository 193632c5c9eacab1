"""The facilitator graph on a robot: camera -> keypoints -> policy -> retargeting + rviz markers.

    ros2 launch social_pose_diffusion facilitator.launch.py camera_topic:=/theta/image_raw \
        facilitator_seat_u:=0.25 device:=cuda

Parameters come from config/facilitator.yaml, then ``params_file``; an argument
overrides them only when given. ``ros2 launch ... --show-args`` lists the
arguments; the nodes, files and arguments are in social_pose_diffusion/ros/spec.py.
"""

from social_pose_diffusion.ros.launch_graph import describe


def generate_launch_description():
    return describe('facilitator')
