"""rclpy messages to and from the package's numpy types (GroupFrame, BGR images, stamps).

Images go through ``cv_bridge`` when it is importable (a ROS install) and
through :mod:`social_pose_diffusion.image_codec` otherwise; both paths raise
ValueError with a readable message on bad input.
"""
import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image, PointCloud2, PointField
from std_msgs.msg import Header

from ..image_codec import compressed_to_bgr, image_to_bgr
from ..keypoint_cloud import FIELDS, POINT_DTYPE, POINT_STEP, GroupFrame, frame_to_points, points_to_frame

try:  # pragma: no cover - only on machines with a ROS install
    from cv_bridge import CvBridge
    _BRIDGE = CvBridge()
except ImportError:
    _BRIDGE = None

# Extra per-joint fields of the generated facilitator pose, after the group layout.
SPREAD_FIELD = ('spread', POINT_STEP, PointField.FLOAT32)
OBS_AGE_FIELD = ('obs_age', POINT_STEP + 4, PointField.FLOAT32)
FACILITATOR_POINT_STEP = POINT_STEP + 8


def stamp_to_ns(stamp):
    """Nanoseconds of a builtin_interfaces/Time."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns):
    """A builtin_interfaces/Time for nanoseconds (non-negative)."""
    sec, nanosec = divmod(max(int(ns), 0), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


def image_to_array(msg):
    """BGR uint8 pixels of a sensor_msgs/Image or CompressedImage; ValueError on bad input."""
    compressed = hasattr(msg, 'format')
    if _BRIDGE is not None:  # pragma: no cover
        try:
            if compressed:
                return _BRIDGE.compressed_imgmsg_to_cv2(msg, 'bgr8')
            return _BRIDGE.imgmsg_to_cv2(msg, 'bgr8')
        except Exception as exc:  # cv_bridge raises its own error type and numpy errors
            raise ValueError(f'cv_bridge could not convert the image: {exc}') from exc
    if compressed:
        return compressed_to_bgr(msg.data)
    return image_to_bgr(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian))


def array_to_image(bgr, stamp_ns, frame_id='camera', encoding='bgr8'):
    """A sensor_msgs/Image for a contiguous uint8 BGR array (``encoding`` is written as given)."""
    bgr = np.ascontiguousarray(bgr)
    msg = Image(header=Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id))
    msg.height, msg.width = int(bgr.shape[0]), int(bgr.shape[1])
    msg.encoding = encoding
    msg.step = int(bgr.strides[0])
    msg.data = bgr.tobytes()
    return msg


def _fields(spec):
    return [PointField(name=n, offset=o, datatype=d, count=1) for n, o, d in spec]


def frame_to_cloud(frame, header):
    """A sensor_msgs/PointCloud2 in the group keypoint layout (see keypoint_cloud)."""
    data, count = frame_to_points(frame)
    return PointCloud2(header=header, height=1, width=count, fields=_fields(FIELDS), is_bigendian=False,
                       point_step=POINT_STEP, row_step=POINT_STEP * count, data=data, is_dense=True)


def cloud_to_frame(msg):
    """A GroupFrame from a PointCloud2; ValueError on a layout it cannot read."""
    if msg.is_bigendian:
        raise ValueError('big-endian keypoint clouds are not supported')
    fields = [(f.name, f.offset, f.datatype) for f in msg.fields]
    return points_to_frame(stamp_to_ns(msg.header.stamp), msg.data, fields, msg.point_step,
                           msg.width * msg.height)


def facilitator_cloud(pose, spread, obs_age_s, header):
    """The generated facilitator (id 0) in the group layout plus ``spread`` and ``obs_age`` fields.

    ``spread`` is the per-joint uncertainty (normalised equirect units, the
    spread of the sampled plans); ``obs_age`` is how old the observation this
    pose was planned from is, in seconds (pose stamp minus observation stamp).
    """
    dtype = np.dtype({'names': list(POINT_DTYPE.names) + ['spread', 'obs_age'],
                      'formats': [POINT_DTYPE.fields[n][0] for n in POINT_DTYPE.names] + ['<f4', '<f4'],
                      'offsets': [POINT_DTYPE.fields[n][1] for n in POINT_DTYPE.names]
                      + [SPREAD_FIELD[1], OBS_AGE_FIELD[1]],
                      'itemsize': FACILITATOR_POINT_STEP})
    joints = len(pose)
    kp = np.concatenate([np.asarray(pose, np.float32)[:, :2], np.ones((joints, 1), np.float32)], -1)
    base, _ = frame_to_points(GroupFrame(0, np.zeros(1, np.int32), kp[None]))
    pts = np.zeros(joints, dtype)
    group = np.frombuffer(base, POINT_DTYPE)
    for name in POINT_DTYPE.names:
        pts[name] = group[name]
    pts['spread'] = np.asarray(spread, np.float32)
    pts['obs_age'] = np.float32(obs_age_s)
    return PointCloud2(header=header, height=1, width=joints,
                       fields=_fields(FIELDS + (SPREAD_FIELD, OBS_AGE_FIELD)), is_bigendian=False,
                       point_step=FACILITATOR_POINT_STEP, row_step=FACILITATOR_POINT_STEP * joints,
                       data=pts.tobytes(), is_dense=True)


def cloud_field(msg, name):
    """One FLOAT32 field of every point as a float array, or None when the cloud lacks it."""
    for f in msg.fields:
        if f.name == name and f.datatype == PointField.FLOAT32:
            count = msg.width * msg.height
            dt = np.dtype({'names': [name], 'formats': ['<f4'], 'offsets': [f.offset],
                           'itemsize': msg.point_step})
            if msg.point_step <= 0 or len(msg.data) < msg.point_step * count:
                return None
            return np.frombuffer(bytes(msg.data[:msg.point_step * count]), dt)[name].astype(np.float64)
    return None
