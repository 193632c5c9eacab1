"""Which tracked person is the facilitator, for turning a real recording into training data."""

import numpy as np

from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.core.skeleton import wrap_u
from social_pose_diffusion.perception.equirect import ray_to_uv
from social_pose_diffusion.perception.people import centre
from social_pose_diffusion.perception.validate import PerceptionError


def identify_facilitator(frame, seat_u=None, tolerance=0.05, facilitator_id=None):
    """Split a :class:`GroupFrame` into ``(participants GroupFrame, facilitator (J, 3) or None)``.

    Give exactly one of ``seat_u`` (the facilitator's seat azimuth in u units:
    the person whose centre is nearest to it, within ``tolerance`` u = 18 deg
    by default) or ``facilitator_id`` (a tracked id known from a config).
    """
    if (seat_u is None) == (facilitator_id is None):
        raise PerceptionError(
            'identify the facilitator by seat_u or by facilitator_id (exactly one)'
        )
    hit = None
    if facilitator_id is not None:
        rows = np.flatnonzero(frame.ids == int(facilitator_id))
        hit = int(rows[0]) if len(rows) else None
    elif len(frame):
        u = np.array([ray_to_uv(centre(kp))[0] for kp in frame.keypoints])
        gap = np.abs(wrap_u(u - float(seat_u)))
        hit = int(gap.argmin()) if gap.min() <= tolerance else None
    if hit is None:
        return frame, None
    rest = np.arange(len(frame)) != hit
    return GroupFrame(frame.stamp_ns, frame.ids[rest], frame.keypoints[rest]), frame.keypoints[hit]
