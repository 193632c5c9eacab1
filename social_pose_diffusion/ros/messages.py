"""The rclpy message kit.

The message classes :mod:`social_pose_diffusion.msgs` builds on a robot.
"""

from array import array

from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import Header

from social_pose_diffusion.msgs.keypoint_cloud import MessageKit

RCLPY = MessageKit(
    Header=Header,
    Time=Time,
    PointCloud2=PointCloud2,
    PointField=PointField,
    Image=Image,
    CompressedImage=CompressedImage,
    buffer=lambda data: array('B', data),
)
