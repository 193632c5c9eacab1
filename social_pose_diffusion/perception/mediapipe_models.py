"""MediaPipe's pose models as used here.

Every detection of the pose detector, and the landmark model on one view.

The detector runs through MediaPipe's own ``PoseDetectionCpu`` graph (the
shipped ``pose_detection.tflite`` with its anchors and NMS), which returns all
detections, where the ``solutions.pose`` API keeps only the first. The
landmark model (``pose_landmark_full.tflite``) runs on a 256x256 person view
through MediaPipe's inference calculator (XNNPACK), returning the pose flag's
value too. A tracked person costs one inference and no detection.
"""

import numpy as np

LANDMARK_SIZE = 256
NUM_LANDMARKS = (
    39  # the model's output: 33 body landmarks, 2 ROI points (33: centre, 34: scale), 4 unused
)
ROI_CENTRE, ROI_SCALE_POINT = 33, 34
DETECTION_GRAPH = """
input_stream: "image"
output_stream: "detections"
node {
  calculator: "PoseDetectionCpu"
  input_stream: "IMAGE:image"
  output_stream: "DETECTIONS:detections"
}
"""
LANDMARK_GRAPH = """
input_stream: "image"
output_stream: "landmarks"
output_stream: "flag"
node {
  calculator: "ImageToTensorCalculator"
  input_stream: "IMAGE:image"
  output_stream: "TENSORS:input"
  options: { [mediapipe.ImageToTensorCalculatorOptions.ext] {
      output_tensor_width: 256 output_tensor_height: 256 keep_aspect_ratio: true
      output_tensor_float_range { min: 0.0 max: 1.0 } border_mode: BORDER_ZERO } }
}
node {
  calculator: "InferenceCalculator"
  input_stream: "TENSORS:input"
  output_stream: "TENSORS:output"
  options: { [mediapipe.InferenceCalculatorOptions.ext] {
      model_path: "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"
      delegate { xnnpack {} } } }
}
node {
  calculator: "SplitTensorVectorCalculator"
  input_stream: "output"
  output_stream: "landmark_tensor"
  output_stream: "flag_tensor"
  options: { [mediapipe.SplitVectorCalculatorOptions.ext] {
      ranges: { begin: 0 end: 1 } ranges: { begin: 1 end: 2 } } }
}
node {
  calculator: "TensorsToFloatsCalculator"
  input_stream: "TENSORS:landmark_tensor"
  output_stream: "FLOATS:landmarks"
}
node {
  calculator: "TensorsToFloatsCalculator"
  input_stream: "TENSORS:flag_tensor"
  output_stream: "FLOATS:flag"
}
"""


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def _graph(text, outputs, side_inputs=None):
    """A MediaPipe graph from its text config, run through the legacy ``solutions`` machinery."""
    from google.protobuf import text_format
    from mediapipe.framework import calculator_pb2
    from mediapipe.python.solution_base import SolutionBase

    config = text_format.Parse(text, calculator_pb2.CalculatorGraphConfig())
    return SolutionBase(graph_config=config, side_inputs=side_inputs, outputs=outputs)


class PoseDetector:
    """All pose detections in an RGB image.

    ``[(score, keypoints (4, 2), face box (x0, y0, x1, y1))]``.

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
            out.append(
                (
                    float(det.score[0]),
                    kps,
                    (box.xmin, box.ymin, box.xmin + box.width, box.ymin + box.height),
                )
            )
        return out

    def close(self):
        self._graph.close()


class LandmarkModel:
    """BlazePose full landmarks of one upright, person-centred RGB view.

    Also the pose flag's value.

    Runs the shipped ``pose_landmark_full.tflite`` through MediaPipe's own
    inference calculator (XNNPACK) but returns the raw outputs, where
    MediaPipe's ``PoseLandmarkByRoiCpu`` only says whether the flag passed
    0.5: people turned away, masked or half hidden often score below it and
    are still worth keeping. Returns ``(presence, landmarks (35, 4))``: x, y
    normalised to the view, visibility and presence as probabilities (rows
    33 and 34: the ROI centre and scale point).
    """

    def __init__(self):
        self._graph = _graph(LANDMARK_GRAPH, ['landmarks', 'flag'])

    def __call__(self, rgb):
        out = self._graph.process({'image': rgb})
        raw = np.asarray(out.landmarks, np.float64).reshape(NUM_LANDMARKS, 5)[
            : ROI_SCALE_POINT + 1
        ]
        landmarks = np.empty((len(raw), 4), np.float64)
        landmarks[:, :2] = raw[:, :2] / LANDMARK_SIZE
        landmarks[:, 2] = _sigmoid(raw[:, 3])
        landmarks[:, 3] = _sigmoid(raw[:, 4])
        return float(np.clip(out.flag[0], 0.0, 1.0)), landmarks

    def close(self):
        self._graph.close()
