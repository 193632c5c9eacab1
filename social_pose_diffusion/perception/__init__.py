"""Perception: everyone's keypoints in 360 degree equirectangular frames, tracked with stable ids.

>>> extractor = make_extractor('mediapipe', discovery_period=30)
>>> frame = extractor.process(bgr, stamp_ns)          # GroupFrame: ids (N,), keypoints (N, J, 3) u, v, conf
>>> participants, facilitator = identify_facilitator(frame, seat_u=0.5)
>>> extractor.reset()                                  # e.g. a looping bag; a stamp going back also resets

``process`` raises :class:`PerceptionError` (a ValueError) for an unusable
image (not H x 2H x 3 uint8, smaller than 128 x 64) and returns an empty
GroupFrame when nobody is there. ``make_extractor('external')`` tracks
keypoints from another detector through ``process_keypoints(GroupFrame)``.

Modules: ``equirect`` (views and cached remap grids), ``roi`` (MediaPipe's
person ROI on the sphere), ``mediapipe_models`` (detector and landmark
runners), ``discovery`` (ring of views, face masking), ``people`` (centres,
duplicates), ``tracks`` (ids), ``mediapipe_backend`` and ``external`` (the
extractors), ``facilitator``, ``validate``; ``composite``, ``reference`` and
``evaluation`` build and score real-photo test scenes. No ROS imports here.
"""
from social_pose_diffusion.perception.facilitator import identify_facilitator
from social_pose_diffusion.perception.factory import BACKENDS, make_extractor
from social_pose_diffusion.perception.validate import PerceptionError

__all__ = ['BACKENDS', 'PerceptionError', 'identify_facilitator', 'make_extractor']
