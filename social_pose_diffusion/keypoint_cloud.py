"""Group keypoints as one frame of tracked people, and their sensor_msgs/PointCloud2 layout.

One point per (person, joint), 32 bytes, little endian:

====== ====== ======= ==================================================
field  offset type    meaning
====== ====== ======= ==================================================
id     0      INT32   tracked person id (stable across frames)
joint  4      INT32   index into :data:`skeleton.JOINT_NAMES`
u      8      FLOAT32 azimuth / 360deg, [0, 1), wraps
v      12     FLOAT32 polar angle / 180deg, [0, 1]
conf   16     FLOAT32 confidence in [0, 1]; 0 = joint not seen
x y z  20..28 FLOAT32 the keypoint on the unit sphere, camera frame (REP-103)
====== ====== ======= ==================================================

The unit-sphere point lets rviz show the cloud directly. Readers find fields
by name, so extra or reordered fields are fine; points with non-finite values
or out-of-range joints are dropped.
"""
from dataclasses import dataclass, field

import numpy as np

from .skeleton import NUM_JOINTS, unit_sphere

INT32, FLOAT32 = 5, 7  # sensor_msgs/PointField datatypes
FIELDS = (('id', 0, INT32), ('joint', 4, INT32), ('u', 8, FLOAT32), ('v', 12, FLOAT32),
          ('conf', 16, FLOAT32), ('x', 20, FLOAT32), ('y', 24, FLOAT32), ('z', 28, FLOAT32))
POINT_STEP = 32
POINT_DTYPE = np.dtype({'names': [f[0] for f in FIELDS],
                        'formats': ['<i4' if f[2] == INT32 else '<f4' for f in FIELDS],
                        'offsets': [f[1] for f in FIELDS], 'itemsize': POINT_STEP})
_NUMPY_OF = {1: 'i1', 2: 'u1', 3: '<i2', 4: '<u2', 5: '<i4', 6: '<u4', 7: '<f4', 8: '<f8'}


@dataclass
class GroupFrame:
    """Everyone seen in one camera frame: ``keypoints[n]`` is person ``ids[n]``'s (J, 3) (u, v, conf)."""

    stamp_ns: int
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, NUM_JOINTS, 3), np.float32))

    def __len__(self):
        return len(self.ids)

    def person(self, person_id):
        """The (J, 3) keypoints of one id, or None."""
        hits = np.flatnonzero(self.ids == person_id)
        return self.keypoints[hits[0]] if len(hits) else None


def frame_to_points(frame):
    """Packed point bytes and point count for a :class:`GroupFrame`."""
    n = len(frame.ids)
    pts = np.zeros(n * NUM_JOINTS, POINT_DTYPE)
    pts['id'] = np.repeat(np.asarray(frame.ids, np.int32), NUM_JOINTS)
    pts['joint'] = np.tile(np.arange(NUM_JOINTS, dtype=np.int32), n)
    kp = np.asarray(frame.keypoints, np.float32).reshape(-1, 3)
    pts['u'], pts['v'], pts['conf'] = kp[:, 0], kp[:, 1], kp[:, 2]
    xyz = unit_sphere(kp[:, :2])
    pts['x'], pts['y'], pts['z'] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    return pts.tobytes(), len(pts)


def points_to_frame(stamp_ns, data, fields, point_step, count):
    """Parse PointCloud2 payload into a :class:`GroupFrame`.

    ``fields`` is a sequence of ``(name, offset, datatype)``. Raises
    ValueError when a required field is missing or the buffer is too short.
    """
    by_name = {name: (offset, dtype) for name, offset, dtype in fields}
    missing = [n for n in ('id', 'joint', 'u', 'v') if n not in by_name]
    if missing:
        raise ValueError(f'keypoint cloud lacks fields {missing}')
    if point_step <= 0 or len(data) < point_step * count:
        raise ValueError(f'keypoint cloud holds {len(data)} bytes, needs {point_step * count}')
    for name, (offset, dtype) in by_name.items():
        if dtype not in _NUMPY_OF:
            raise ValueError(f'keypoint cloud field {name!r} has unknown datatype {dtype}')
    names = [n for n in ('id', 'joint', 'u', 'v', 'conf') if n in by_name]
    dt = np.dtype({'names': names, 'formats': [_NUMPY_OF[by_name[n][1]] for n in names],
                   'offsets': [by_name[n][0] for n in names], 'itemsize': point_step})
    pts = np.frombuffer(bytes(data[:point_step * count]), dt)
    ids = pts['id'].astype(np.int64)
    joint = pts['joint'].astype(np.int64)
    uv = np.stack([pts['u'], pts['v']], -1).astype(np.float32)
    conf = pts['conf'].astype(np.float32) if 'conf' in names else np.ones(len(pts), np.float32)
    ok = (np.isfinite(uv).all(-1) & np.isfinite(conf) & (joint >= 0) & (joint < NUM_JOINTS)
          & (uv[:, 1] >= 0) & (uv[:, 1] <= 1))
    unique_ids = np.unique(ids[ok])
    keypoints = np.zeros((len(unique_ids), NUM_JOINTS, 3), np.float32)
    rows = np.searchsorted(unique_ids, ids[ok])
    keypoints[rows, joint[ok], :2] = uv[ok]
    keypoints[rows, joint[ok], 0] %= 1.0
    keypoints[rows, joint[ok], 2] = np.clip(conf[ok], 0.0, 1.0)
    return GroupFrame(int(stamp_ns), unique_ids.astype(np.int32), keypoints)
