"""Perception: everyone's keypoints in 360 degree equirectangular frames, tracked with stable ids.

>>> extractor = make_extractor('mediapipe', discovery_period=30)
>>> # a GroupFrame: ids (N,), keypoints (N, J, 3) u, v, conf
>>> frame = extractor.process(bgr, stamp_ns)
>>> participants, facilitator = identify_facilitator(frame, seat_u=0.5)
>>> extractor.reset()  # e.g. a looping bag; a stamp going back also resets

``process`` raises :class:`PerceptionError` (a ValueError) for an unusable
image (not H x 2H x 3 uint8, smaller than 128 x 64) and returns an empty
GroupFrame when nobody is there. Within the per-frame time budget only some
people get a landmark update; the others are moved by optical flow (``flow``)
or carried forward: ``extractor.person_stamps`` ({id: stamp_ns their
keypoints were measured, by landmarks or flow}) and ``extractor.stats``
(``staleness_ms``, ``update_interval_ms`` of the landmarks per id,
``landmark_age_ms_max``) say how fresh each person is.
``DEFAULT_MIN_CONFIDENCE`` is the one default of the new-person threshold for
every caller. ``make_extractor('external')`` tracks
keypoints from another detector through ``process_keypoints(GroupFrame)``.

Modules: ``equirect`` (views and cached remap grids), ``roi`` (MediaPipe's
person ROI on the sphere), ``mediapipe_models`` (detector and landmark
runners), ``discovery`` (rings of views, face masking), ``verify`` (is a
candidate a person), ``people`` (centres, duplicates), ``tracks`` (ids,
seats, prediction), ``schedule`` (the time budget), ``mediapipe_backend``
and ``external`` (the extractors), ``flow`` (optical flow between landmark
updates), ``facilitator``, ``validate``;
``composite``, ``meeting``, ``reference`` and ``evaluation`` build and score
real-photo test scenes. No ROS imports here.
"""

from social_pose_diffusion.perception.facilitator import identify_facilitator
from social_pose_diffusion.perception.factory import BACKENDS, make_extractor
from social_pose_diffusion.perception.validate import PerceptionError
from social_pose_diffusion.perception.verify import DEFAULT_MIN_CONFIDENCE

__all__ = [
    'BACKENDS',
    'DEFAULT_MIN_CONFIDENCE',
    'PerceptionError',
    'identify_facilitator',
    'make_extractor',
]
