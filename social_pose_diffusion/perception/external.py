"""The external backend: keypoints from another detector (e.g. a GPU model).

They are validated and given stable ids.
"""

import time

from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.perception.tracks import TrackSet
from social_pose_diffusion.perception.validate import (
    PerceptionError,
    check_options,
    clean_keypoints,
)


class ExternalExtractor:
    """Tracks keypoints computed elsewhere.

    Ids in the input are ignored and replaced by tracked ones.

    Feed :meth:`process_keypoints` a :class:`GroupFrame` per camera frame:
    joints with NaN/inf or v outside [0, 1] are zeroed, u is wrapped, people
    without a usable joint are dropped.
    """

    def __init__(
        self, max_people=16, track_timeout_s=2.0, match_distance_deg=8.0, seat_memory_s=600.0
    ):
        check_options(
            max_people=(max_people, 1, 1000),
            track_timeout_s=(track_timeout_s, 0.0, 3600.0),
            match_distance_deg=(match_distance_deg, 0.0, 180.0),
            seat_memory_s=(seat_memory_s, 0.0, 86400.0),
        )
        self.max_people = int(max_people)
        self.tracks = TrackSet(match_distance_deg, track_timeout_s, seat_memory_s)
        self.stats = {}

    def reset(self) -> None:
        """Forget every track and seat."""
        self.tracks.reset()

    def process_keypoints(self, frame: GroupFrame) -> GroupFrame:
        """The same people as ``frame`` with stable ids, as a :class:`GroupFrame`."""
        start = time.perf_counter()
        clean = clean_keypoints(frame)
        order = (-clean.keypoints[..., 2].sum(-1)).argsort()[: self.max_people]
        self.tracks.begin(clean.stamp_ns)
        out = self.tracks.update(list(clean.keypoints[order]), clean.stamp_ns)
        self.stats = {
            'tracking_ms': 1e3 * (time.perf_counter() - start),
            'people': len(out),
            'dropped': len(frame.ids) - len(out),
            'tracks': len(self.tracks.tracks),
        }
        return out

    def process(self, bgr, stamp_ns):
        """Not for images: raises :class:`PerceptionError`."""
        raise PerceptionError(
            'the external backend takes keypoints: call process_keypoints(GroupFrame)'
        )
