"""Replay a session bag into the facilitator graph with simulated time, recording what it publishes.

    ros2 launch social_pose_diffusion replay.launch.py bag:=/tmp/s facilitator_seat_u:=0.25 out:=/tmp/replay_out

``ros2 bag play --clock`` publishes only the camera stream (the recorded keypoints
and ground truth stay out of the graph so it regenerates them); every node runs
with config/facilitator.yaml + config/replay.yaml (use_sim_time: true).
Scoring: ``social-pose evaluate --replay BAG`` does the same through
social_pose_diffusion.graph and writes the report.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

PACKAGE = 'social_pose_diffusion'
OUTPUTS = ['/humans/keypoints', '/facilitator/observed', '/facilitator/pose', '/facilitator/joint_states',
           '/facilitator/markers', '/diagnostics']


def generate_launch_description():
    share = get_package_share_directory(PACKAGE)
    params = [os.path.join(share, 'config', 'facilitator.yaml'), os.path.join(share, 'config', 'replay.yaml')]
    keypoints = {'facilitator_seat_u': LaunchConfiguration('facilitator_seat_u')}
    return LaunchDescription([
        DeclareLaunchArgument('bag', description='session bag directory (social-pose simulate --out)'),
        DeclareLaunchArgument('camera_topic', default_value='/camera/image_raw/compressed',
                              description='camera topic in the bag (the graph subscribes to it)'),
        DeclareLaunchArgument('facilitator_seat_u', default_value='-1.0',
                              description="azimuth of the recorded facilitator (the bag's /session/info)"),
        DeclareLaunchArgument('rate', default_value='1.0', description='playback rate'),
        DeclareLaunchArgument('out', default_value='replay_out', description='bag of the graph outputs'),
        DeclareLaunchArgument('rviz', default_value='false', description='start rviz2'),
        Node(package=PACKAGE, executable='keypoints_node', name='keypoints_node', output='screen',
             parameters=params + [keypoints]),
        LifecycleNode(package=PACKAGE, executable='policy_node', name='policy_node', namespace='',
                      output='screen', parameters=params),
        Node(package=PACKAGE, executable='retarget_node', name='retarget_node', output='screen', parameters=params),
        Node(package=PACKAGE, executable='visualizer_node', name='visualizer_node', output='screen',
             parameters=params),
        ExecuteProcess(cmd=['ros2', 'bag', 'record', '--use-sim-time', '-o', LaunchConfiguration('out')] + OUTPUTS,
                       output='screen'),
        ExecuteProcess(cmd=['ros2', 'bag', 'play', LaunchConfiguration('bag'), '--clock', '100',
                            '--rate', LaunchConfiguration('rate'),
                            '--topics', LaunchConfiguration('camera_topic')], output='screen'),
        Node(package='rviz2', executable='rviz2', name='rviz2',
             arguments=['-d', os.path.join(share, 'config', 'facilitator.rviz')],
             parameters=[{'use_sim_time': True}], condition=IfCondition(LaunchConfiguration('rviz'))),
    ])
