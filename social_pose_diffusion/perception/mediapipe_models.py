"""MediaPipe's pose models as used here: every detection of the pose detector, and the landmark model on one view.

The detector runs through MediaPipe's own ``PoseDetectionCpu`` graph (the
shipped ``pose_detection.tflite`` with its anchors and NMS), which returns all
detections, where the ``solutions.pose`` API keeps only the first. The
landmark model (``pose_landmark_full.tflite``) runs on a 256x256 person view
two ways: through MediaPipe's ``PoseLandmarkByRoiCpu`` graph (XNNPACK, the
fastest here, for tracking; it only says whether its pose flag passed 0.5),
and in OpenCV's DNN module, which also returns the flag's value (to confirm
new people). Either way a tracked person costs one inference and no detection.
"""
from pathlib import Path

import cv2
import numpy as np

LANDMARK_SIZE = 256
NUM_LANDMARKS = 39  # the model's output: 33 body landmarks, 2 ROI points (33: centre, 34: scale), 4 unused
ROI_CENTRE, ROI_SCALE_POINT = 33, 34
DETECTION_GRAPH = '''
input_stream: "image"
output_stream: "detections"
node { calculator: "PoseDetectionCpu" input_stream: "IMAGE:image" output_stream: "DETECTIONS:detections" }
'''
LANDMARK_GRAPH = '''
input_stream: "image"
input_stream: "roi"
output_stream: "landmarks"
output_stream: "auxiliary"
node {
  calculator: "PoseLandmarkByRoiCpu"
  input_side_packet: "MODEL_COMPLEXITY:model_complexity"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  output_stream: "LANDMARKS:landmarks"
  output_stream: "AUXILIARY_LANDMARKS:auxiliary"
}
'''


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def model_path(name):
    """Path of a model file shipped inside the mediapipe wheel."""
    import mediapipe
    return Path(mediapipe.__path__[0]) / 'modules' / name


def _graph(text, outputs, side_inputs=None):
    """A MediaPipe graph from its text config, run through the legacy ``solutions`` machinery."""
    from google.protobuf import text_format
    from mediapipe.framework import calculator_pb2
    from mediapipe.python.solution_base import SolutionBase
    config = text_format.Parse(text, calculator_pb2.CalculatorGraphConfig())
    return SolutionBase(graph_config=config, side_inputs=side_inputs, outputs=outputs)


class PoseDetector:
    """All pose detections in an RGB image: ``[(score, keypoints (4, 2), face box (x0, y0, x1, y1))]``.

    Coordinates are normalised to the image. Keypoints: 0 hip centre,
    1 full-body scale/rotation point, 2 shoulder centre, 3 upper-body point.
    """

    def __init__(self):
        self._graph = _graph(DETECTION_GRAPH, ['detections'])

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


class LandmarkGraph:
    """BlazePose full landmarks of one upright, person-centred RGB view, by MediaPipe's own graph.

    Returns ``(presence, landmarks (35, 4))`` like :class:`LandmarkModel`,
    with presence 1.0 when MediaPipe's pose flag passed 0.5, else 0.0 (and
    no landmarks: None).
    """

    def __init__(self):
        from mediapipe.framework.formats import rect_pb2
        self._graph = _graph(LANDMARK_GRAPH, ['landmarks', 'auxiliary'], {'model_complexity': 1})
        self._whole = rect_pb2.NormalizedRect(x_center=0.5, y_center=0.5, width=1.0, height=1.0, rotation=0.0)

    def __call__(self, rgb):
        out = self._graph.process({'image': rgb, 'roi': self._whole})
        if out.landmarks is None or out.auxiliary is None:
            return 0.0, None
        marks = list(out.landmarks.landmark) + list(out.auxiliary.landmark)
        return 1.0, np.array([(m.x, m.y, m.visibility, m.presence) for m in marks], np.float64)

    def close(self):
        self._graph.close()


class LandmarkModel:
    """BlazePose full landmarks of one upright, person-centred 256x256 RGB view, in OpenCV's DNN module.

    Returns ``(presence, landmarks (35, 4))``: the pose flag's probability,
    and x, y normalised to the view, visibility and presence as probabilities
    (rows 33 and 34: the ROI centre and scale point).
    """

    def __init__(self):
        self._net = cv2.dnn.readNetFromTFLite(str(model_path('pose_landmark/pose_landmark_full.tflite')))
        self._outputs = self._net.getUnconnectedOutLayersNames()

    def __call__(self, rgb):
        blob = cv2.dnn.blobFromImage(rgb, 1.0 / 255.0)
        self._net.setInput(blob)
        outs = {o.size: o for o in self._net.forward(self._outputs)}
        raw = outs[NUM_LANDMARKS * 5].reshape(NUM_LANDMARKS, 5)[:ROI_SCALE_POINT + 1]
        presence = float(np.clip(outs[1].reshape(()), 0.0, 1.0))  # the model's pose flag is a probability
        landmarks = np.empty((len(raw), 4), np.float64)
        landmarks[:, :2] = raw[:, :2] / LANDMARK_SIZE
        landmarks[:, 2] = _sigmoid(raw[:, 3])
        landmarks[:, 3] = _sigmoid(raw[:, 4])
        return presence, landmarks
