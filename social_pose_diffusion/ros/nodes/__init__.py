"""The ROS 2 nodes: thin rclpy wrappers around the perception, policy and retargeting cores.

Graph (topics and layouts in the README)::

    /camera/image_raw[/compressed] -> keypoints_node -> /humans/keypoints -> policy_node
        -> /facilitator/pose -> retarget_node -> /facilitator/joint_states
                             -> visualizer_node -> /facilitator/markers
"""
