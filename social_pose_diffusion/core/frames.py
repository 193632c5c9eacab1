"""One camera frame's worth of tracked people: the unit every pipeline stage passes on."""

from dataclasses import dataclass, field

import numpy as np

from social_pose_diffusion.core.skeleton import NUM_JOINTS


@dataclass
class GroupFrame:
    """Everyone seen in one camera frame.

    ``keypoints[n]`` is person ``ids[n]``'s (J, 3) (u, v, conf).
    """

    stamp_ns: int
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, NUM_JOINTS, 3), np.float32))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def anyone(self) -> bool:
        """True when at least one keypoint of anyone is seen (confidence above 0)."""
        return bool((np.asarray(self.keypoints)[..., 2] > 0).any())

    def person(self, person_id: int) -> np.ndarray | None:
        """The (J, 3) keypoints of one id, or None."""
        hits = np.flatnonzero(self.ids == person_id)
        return self.keypoints[hits[0]] if len(hits) else None


def single_person(stamp_ns: int, keypoints: np.ndarray, person_id: int = 0) -> GroupFrame:
    """One person's (J, 3) keypoints as a :class:`GroupFrame` (the facilitator is id 0)."""
    return GroupFrame(
        int(stamp_ns), np.full(1, person_id, np.int32), np.asarray(keypoints, np.float32)[None]
    )
