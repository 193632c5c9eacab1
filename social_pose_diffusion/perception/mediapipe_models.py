"""MediaPipe's pose models as used here: every detection of the pose detector, and the landmark model on one view.

The detector runs through MediaPipe's own ``PoseDetectionCpu`` graph (the
shipped ``pose_detection.tflite`` with its anchors and NMS), which returns all
detections, where the ``solutions.pose`` API keeps only the first. The landmark
model (``pose_landmark_full.tflite``, shipped in the mediapipe wheel) runs in
OpenCV's DNN module on a 256x256 view, so each tracked person costs one
landmark inference and no detection.
"""
from pathlib import Path

import cv2
import numpy as np

LANDMARK_SIZE = 256
NUM_LANDMARKS = 39  # 33 body landmarks + 2 ROI points (33: centre, 34: scale) + 4 unused
ROI_CENTRE, ROI_SCALE_POINT = 33, 34
DETECTION_GRAPH = '''
input_stream: "image"
output_stream: "detections"
node { calculator: "PoseDetectionCpu" input_stream: "IMAGE:image" output_stream: "DETECTIONS:detections" }
'''


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def model_path(name):
    """Path of a model file shipped inside the mediapipe wheel."""
    import mediapipe
    return Path(mediapipe.__path__[0]) / 'modules' / name


class PoseDetector:
    """All pose detections in an RGB image: ``[(score, keypoints (4, 2), face box (x0, y0, x1, y1))]``.

    Coordinates are normalised to the image. Keypoints: 0 hip centre,
    1 full-body scale/rotation point, 2 shoulder centre, 3 upper-body point.
    """

    def __init__(self):
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.python.solution_base import SolutionBase
        config = text_format.Parse(DETECTION_GRAPH, calculator_pb2.CalculatorGraphConfig())
        self._graph = SolutionBase(graph_config=config, outputs=['detections'])

    def __call__(self, rgb):
        out = []
        for det in self._graph.process({'image': rgb}).detections or []:
            loc = det.location_data
            box = loc.relative_bounding_box
            kps = np.array([(k.x, k.y) for k in loc.relative_keypoints], np.float64)
            out.append((float(det.score[0]), kps,
                        (box.xmin, box.ymin, box.xmin + box.width, box.ymin + box.height)))
        return out

    def close(self):
        self._graph.close()


class LandmarkModel:
    """BlazePose full landmarks of one upright, person-centred 256x256 RGB view.

    Returns ``(presence, landmarks (39, 4))`` with x, y normalised to the
    view, visibility and presence as probabilities.
    """

    def __init__(self):
        self._net = cv2.dnn.readNetFromTFLite(str(model_path('pose_landmark/pose_landmark_full.tflite')))
        self._outputs = self._net.getUnconnectedOutLayersNames()

    def __call__(self, rgb):
        blob = cv2.dnn.blobFromImage(rgb, 1.0 / 255.0)
        self._net.setInput(blob)
        outs = {o.size: o for o in self._net.forward(self._outputs)}
        raw = outs[NUM_LANDMARKS * 5].reshape(NUM_LANDMARKS, 5)
        presence = float(np.clip(outs[1].reshape(()), 0.0, 1.0))  # the model's pose flag is a probability
        landmarks = np.empty((NUM_LANDMARKS, 4), np.float64)
        landmarks[:, :2] = raw[:, :2] / LANDMARK_SIZE
        landmarks[:, 2] = _sigmoid(raw[:, 3])
        landmarks[:, 3] = _sigmoid(raw[:, 4])
        return presence, landmarks
