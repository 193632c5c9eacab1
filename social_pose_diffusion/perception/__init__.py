"""Perception: every person's keypoints in 360 degree equirectangular frames, tracked with stable ids.

>>> extractor = make_extractor('mediapipe', discovery_period=30)
>>> frame = extractor.process(bgr, stamp_ns)          # GroupFrame (ids, (N, J, 3) u, v, conf)
>>> participants, facilitator = identify_facilitator(frame, seat_u=0.5)

No ROS imports here; the keypoints node wraps this.
"""
from .facilitator import identify_facilitator
from .factory import BACKENDS, make_extractor
from .validate import PerceptionError

__all__ = ['BACKENDS', 'PerceptionError', 'identify_facilitator', 'make_extractor']
