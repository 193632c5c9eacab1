"""The facilitator graph on a robot: camera -> keypoints -> policy -> retargeting + rviz markers.

    ros2 launch social_pose_diffusion facilitator.launch.py camera_topic:=/theta/image_raw device:=cuda

Arguments: camera_topic, image_transport (raw|compressed), params_file, device (auto|cpu|cuda),
model_path, use_sim_time, rviz (true|false), robot_state_publisher (true|false).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

PACKAGE = 'social_pose_diffusion'


def generate_launch_description():
    share = get_package_share_directory(PACKAGE)
    params = LaunchConfiguration('params_file')
    sim_time = LaunchConfiguration('use_sim_time')
    with open(os.path.join(share, 'config', 'facilitator.urdf')) as f:
        robot_description = f.read()
    return LaunchDescription([
        DeclareLaunchArgument('camera_topic', default_value='/camera/image_raw',
                              description='equirectangular camera topic (sensor_msgs/Image)'),
        DeclareLaunchArgument('image_transport', default_value='raw', description='raw | compressed'),
        DeclareLaunchArgument('params_file', default_value=os.path.join(share, 'config', 'facilitator.yaml'),
                              description='parameters of every node'),
        DeclareLaunchArgument('device', default_value='auto', description='policy device: auto | cpu | cuda'),
        DeclareLaunchArgument('model_path', default_value='', description='policy model; empty: packaged default'),
        DeclareLaunchArgument('use_sim_time', default_value='false', description='follow /clock'),
        DeclareLaunchArgument('rviz', default_value='true', description='start rviz2'),
        DeclareLaunchArgument('robot_state_publisher', default_value='true',
                              description='publish the reference body (config/facilitator.urdf)'),
        Node(package=PACKAGE, executable='keypoints_node', name='keypoints_node', output='screen',
             parameters=[params, {'image_topic': LaunchConfiguration('camera_topic'),
                                  'image_transport': LaunchConfiguration('image_transport'),
                                  'use_sim_time': sim_time}]),
        LifecycleNode(package=PACKAGE, executable='policy_node', name='policy_node', namespace='',
                      output='screen',
                      parameters=[params, {'device': LaunchConfiguration('device'),
                                           'model_path': LaunchConfiguration('model_path'),
                                           'use_sim_time': sim_time}]),
        Node(package=PACKAGE, executable='retarget_node', name='retarget_node', output='screen',
             parameters=[params, {'use_sim_time': sim_time}]),
        Node(package=PACKAGE, executable='visualizer_node', name='visualizer_node', output='screen',
             parameters=[params, {'use_sim_time': sim_time}]),
        Node(package='robot_state_publisher', executable='robot_state_publisher', name='facilitator_state_publisher',
             parameters=[{'robot_description': robot_description, 'use_sim_time': sim_time}],
             remappings=[('joint_states', '/facilitator/joint_states')],
             condition=IfCondition(LaunchConfiguration('robot_state_publisher'))),
        Node(package='rviz2', executable='rviz2', name='rviz2',
             arguments=['-d', os.path.join(share, 'config', 'facilitator.rviz')],
             parameters=[{'use_sim_time': sim_time}], condition=IfCondition(LaunchConfiguration('rviz'))),
    ])
