"""Ground truth for composites.

MediaPipe's own ``solutions.pose`` run directly on an unwarped photo.
"""

import cv2
import numpy as np

from social_pose_diffusion.core.skeleton import MEDIAPIPE_INDEX


def photo_keypoints(bgr):
    """The 13 joints MediaPipe finds in a photo as (x, y, visibility).

    x, y normalised; None if nobody.
    """
    import mediapipe as mp

    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
        result = pose.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if result.pose_landmarks is None:
        return None
    marks = result.pose_landmarks.landmark
    return np.array([(marks[i].x, marks[i].y, marks[i].visibility) for i in MEDIAPIPE_INDEX])
