"""A discussion session as aligned arrays: the group, the facilitator and what happened."""
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Session:
    """Frame-aligned arrays of one recorded or simulated session.

    ``participants[t, p]`` is participant ``participant_ids[p]``'s (J, 3)
    keypoints at ``stamps_ns[t]`` (confidence 0 where not seen);
    ``facilitator[t]`` is the facilitator's (J, 3). ``speaker``, ``invite``
    (participant index or -1) and ``invite_hand`` (-1 none, 0 left, 1 right)
    are known for simulated sessions and -1 otherwise; ``attend`` (participant
    index or -1), when known, is whom the facilitator is turned to at each frame
    (the simulator's drive signal: the speaker or invitee after a reaction
    delay). ``info`` holds the session's metadata (style, fps, seed, seats, ...).
    """

    stamps_ns: np.ndarray
    participant_ids: np.ndarray
    participants: np.ndarray
    facilitator: np.ndarray
    speaker: np.ndarray
    invite: np.ndarray
    invite_hand: np.ndarray
    info: dict = field(default_factory=dict)
    attend: np.ndarray | None = None

    def __len__(self):
        return len(self.stamps_ns)

    @property
    def fps(self):
        """Frame rate from the metadata, else from the stamps."""
        if 'fps' in self.info:
            return float(self.info['fps'])
        return float(1e9 / np.median(np.diff(self.stamps_ns))) if len(self) > 1 else 30.0
