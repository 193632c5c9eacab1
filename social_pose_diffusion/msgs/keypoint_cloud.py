"""The sensor_msgs/PointCloud2 layouts of group keypoints and of the generated facilitator pose.

One point per (person, joint), 32 bytes, little endian:

====== ====== ======= ==================================================
field  offset type    meaning
====== ====== ======= ==================================================
id     0      INT32   tracked person id (stable across frames)
joint  4      INT32   index into :data:`core.skeleton.JOINT_NAMES`
u      8      FLOAT32 azimuth / 360deg, [0, 1), wraps
v      12     FLOAT32 polar angle / 180deg, [0, 1]
conf   16     FLOAT32 confidence in [0, 1]; 0 = joint not seen
x y z  20..28 FLOAT32 the keypoint on the unit sphere, camera frame (REP-103)
====== ====== ======= ==================================================

The facilitator pose adds ``spread`` (offset 32) and ``obs_age`` (offset 36),
40 bytes a point. The unit-sphere point lets rviz show a cloud directly.

Readers find fields by name, so extra or reordered fields are fine; a cloud
whose required fields are missing, duplicated, of the wrong kind, overlapping
or big endian is refused with a ValueError that says why; points with
non-finite values or out-of-range joints are dropped. The same functions
serve rclpy and rosbags messages: readers only use message attributes, and
writers take a :class:`MessageKit` of the message classes to build.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from social_pose_diffusion.core.frames import GroupFrame, single_person
from social_pose_diffusion.core.skeleton import NUM_JOINTS, unit_sphere

INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = range(1, 9)  # sensor_msgs/PointField
_NUMPY_OF = {
    INT8: 'i1',
    UINT8: 'u1',
    INT16: '<i2',
    UINT16: '<u2',
    INT32: '<i4',
    UINT32: '<u4',
    FLOAT32: '<f4',
    FLOAT64: '<f8',
}
_INTEGER, _FLOAT = (INT8, UINT8, INT16, UINT16, INT32, UINT32), (FLOAT32, FLOAT64)
# What each field of the layout must be: integer ids and joints, floating-point coordinates.
_KIND = {'id': _INTEGER, 'joint': _INTEGER, 'u': _FLOAT, 'v': _FLOAT, 'conf': _FLOAT}
REQUIRED = ('id', 'joint', 'u', 'v')

FIELDS = (
    ('id', 0, INT32),
    ('joint', 4, INT32),
    ('u', 8, FLOAT32),
    ('v', 12, FLOAT32),
    ('conf', 16, FLOAT32),
    ('x', 20, FLOAT32),
    ('y', 24, FLOAT32),
    ('z', 28, FLOAT32),
)
POINT_STEP = 32
FACILITATOR_FIELDS = FIELDS + (('spread', 32, FLOAT32), ('obs_age', 36, FLOAT32))
FACILITATOR_POINT_STEP = 40


def _dtype(fields, step):
    return np.dtype(
        {
            'names': [f[0] for f in fields],
            'formats': [_NUMPY_OF[f[2]] for f in fields],
            'offsets': [f[1] for f in fields],
            'itemsize': step,
        }
    )


POINT_DTYPE = _dtype(FIELDS, POINT_STEP)
FACILITATOR_DTYPE = _dtype(FACILITATOR_FIELDS, FACILITATOR_POINT_STEP)


@dataclass(frozen=True)
class MessageKit:
    """The message classes a writer builds.

    Either rclpy's (``ros.messages``) or rosbags' (``sources.bags``).

    ``buffer`` turns payload bytes into what the kit's ``data`` fields take.
    """

    Header: Any
    Time: Any
    PointCloud2: Any
    PointField: Any
    Image: Any
    CompressedImage: Any
    buffer: Callable[[bytes], Any]

    def stamp(self, ns: int) -> Any:
        """A builtin_interfaces/Time for nanoseconds (non-negative)."""
        sec, nanosec = divmod(max(int(ns), 0), 1_000_000_000)
        return self.Time(sec=sec, nanosec=nanosec)

    def header(self, ns: int, frame_id: str = 'camera') -> Any:
        return self.Header(stamp=self.stamp(ns), frame_id=frame_id)


def stamp_ns(msg: Any) -> int:
    """Nanoseconds of a message's header stamp (or of a builtin_interfaces/Time)."""
    stamp = getattr(msg, 'header', msg)
    stamp = getattr(stamp, 'stamp', stamp)
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _points(frame: GroupFrame, dtype: np.dtype) -> np.ndarray:
    n = len(frame.ids)
    pts = np.zeros(n * NUM_JOINTS, dtype)
    pts['id'] = np.repeat(np.asarray(frame.ids, np.int32), NUM_JOINTS)
    pts['joint'] = np.tile(np.arange(NUM_JOINTS, dtype=np.int32), n)
    kp = np.asarray(frame.keypoints, np.float32).reshape(-1, 3)
    pts['u'], pts['v'], pts['conf'] = kp[:, 0], kp[:, 1], kp[:, 2]
    xyz = unit_sphere(kp[:, :2])
    pts['x'], pts['y'], pts['z'] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    return pts


def _cloud(kit: MessageKit, header: Any, pts: np.ndarray, fields, step: int) -> Any:
    return kit.PointCloud2(
        header=header,
        height=1,
        width=len(pts),
        fields=[kit.PointField(name=n, offset=o, datatype=d, count=1) for n, o, d in fields],
        is_bigendian=False,
        point_step=step,
        row_step=step * len(pts),
        data=kit.buffer(pts.tobytes()),
        is_dense=True,
    )


def frame_to_cloud(frame: GroupFrame, header: Any, kit: MessageKit) -> Any:
    """A PointCloud2 in the group keypoint layout."""
    return _cloud(kit, header, _points(frame, POINT_DTYPE), FIELDS, POINT_STEP)


def facilitator_cloud(
    pose: np.ndarray, spread: np.ndarray, obs_age_s: float, header: Any, kit: MessageKit
) -> Any:
    """The generated facilitator (id 0, conf 1).

    It carries per-joint ``spread`` and the plan's ``obs_age``.

    ``spread`` is the per-joint uncertainty (normalised equirect units, the
    spread of the sampled plans); ``obs_age`` is how old the observation this
    pose was planned from is, in seconds (pose stamp minus observation stamp).
    """
    pose = np.asarray(pose, np.float32)[:, :2]
    kp = np.concatenate([pose, np.ones((len(pose), 1), np.float32)], -1)
    pts = _points(single_person(0, kp), FACILITATOR_DTYPE)
    pts['spread'] = np.asarray(spread, np.float32)
    pts['obs_age'] = np.float32(obs_age_s)
    return _cloud(kit, header, pts, FACILITATOR_FIELDS, FACILITATOR_POINT_STEP)


def _layout(msg: Any) -> dict:
    """``{name: (offset, datatype)}`` of a cloud's fields after checking them.

    ValueError says what is wrong.
    """
    if msg.is_bigendian:
        raise ValueError('big-endian keypoint clouds are not supported')
    step, count = int(msg.point_step), int(msg.width) * int(msg.height)
    if step <= 0:
        raise ValueError(f'keypoint cloud has point_step {step}')
    spans: list[tuple[str, int, int]] = []
    layout: dict[str, tuple[int, int]] = {}
    for f in msg.fields:
        if f.datatype not in _NUMPY_OF:
            raise ValueError(f'keypoint cloud field {f.name!r} has unknown datatype {f.datatype}')
        if f.name in layout:
            raise ValueError(f'keypoint cloud declares field {f.name!r} twice')
        size = np.dtype(_NUMPY_OF[f.datatype]).itemsize * max(int(f.count), 1)
        if f.offset < 0 or f.offset + size > step:
            raise ValueError(
                f'keypoint cloud field {f.name!r} ({f.offset}+{size} bytes) lies outside '
                f'the {step}-byte point'
            )
        for name, lo, hi in spans:
            if f.offset < hi and lo < f.offset + size:
                raise ValueError(f'keypoint cloud fields {name!r} and {f.name!r} overlap')
        spans.append((f.name, f.offset, f.offset + size))
        layout[f.name] = (int(f.offset), int(f.datatype))
    missing = [n for n in REQUIRED if n not in layout]
    if missing:
        raise ValueError(f'keypoint cloud lacks fields {missing}')
    for name, kinds in _KIND.items():
        if name in layout and layout[name][1] not in kinds:
            kind = 'an integer' if kinds is _INTEGER else 'a floating-point'
            raise ValueError(
                f'keypoint cloud field {name!r} must be {kind} type, '
                f'not datatype {layout[name][1]}'
            )
    if len(msg.data) < step * count:
        raise ValueError(f'keypoint cloud holds {len(msg.data)} bytes, needs {step * count}')
    return layout


def cloud_field(msg: Any, name: str) -> np.ndarray | None:
    """One floating-point field of every point as float64.

    None when the cloud lacks it or is unreadable.
    """
    try:
        layout = _layout(msg)
    except ValueError:
        return None
    if name not in layout or layout[name][1] not in _FLOAT:
        return None
    dt = np.dtype(
        {
            'names': [name],
            'formats': [_NUMPY_OF[layout[name][1]]],
            'offsets': [layout[name][0]],
            'itemsize': int(msg.point_step),
        }
    )
    count = int(msg.width) * int(msg.height)
    return np.frombuffer(bytes(msg.data[: msg.point_step * count]), dt)[name].astype(np.float64)


def cloud_to_frame(msg: Any) -> GroupFrame:
    """A :class:`GroupFrame` from a PointCloud2 (rclpy or rosbags).

    ValueError for a layout it cannot read.
    """
    layout = _layout(msg)
    names = [n for n in ('id', 'joint', 'u', 'v', 'conf') if n in layout]
    dt = np.dtype(
        {
            'names': names,
            'formats': [_NUMPY_OF[layout[n][1]] for n in names],
            'offsets': [layout[n][0] for n in names],
            'itemsize': int(msg.point_step),
        }
    )
    count = int(msg.width) * int(msg.height)
    pts = np.frombuffer(bytes(msg.data[: msg.point_step * count]), dt)
    ids = pts['id'].astype(np.int64)
    joint = pts['joint'].astype(np.int64)
    uv = np.stack([pts['u'], pts['v']], -1).astype(np.float32)
    conf = pts['conf'].astype(np.float32) if 'conf' in names else np.ones(len(pts), np.float32)
    ok = (
        np.isfinite(uv).all(-1)
        & np.isfinite(conf)
        & (joint >= 0)
        & (joint < NUM_JOINTS)
        & (uv[:, 1] >= 0)
        & (uv[:, 1] <= 1)
    )
    unique_ids = np.unique(ids[ok])
    keypoints = np.zeros((len(unique_ids), NUM_JOINTS, 3), np.float32)
    rows = np.searchsorted(unique_ids, ids[ok])
    keypoints[rows, joint[ok], :2] = uv[ok]
    keypoints[rows, joint[ok], 0] %= 1.0
    keypoints[rows, joint[ok], 2] = np.clip(conf[ok], 0.0, 1.0)
    return GroupFrame(stamp_ns(msg), unique_ids.astype(np.int32), keypoints)
