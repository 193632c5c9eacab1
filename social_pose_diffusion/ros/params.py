"""Node parameters: a declarative spec each, declared with descriptors, validated on every change.

Every node lists its parameters as :class:`Spec` entries; :class:`Parameters`
declares them with ``ParameterDescriptor`` ranges (so ``ros2 param describe``
shows the rules), refuses an invalid set with a reason (type, NaN/inf, range,
choices, list length, a node's own rule), keeps the current values and tells
the node which ones changed so it applies them live. A parameter a running
node cannot take (a topic of a plain node) is read-only; one that applies at
the next lifecycle transition says so in its description and in a log line.
An invalid value at start-up (a parameter file, ``-p``) raises
:class:`ParameterError` with one line naming the parameter; ``run_node`` logs
it and exits with status 2.
"""

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.exceptions import InvalidTopicNameException, ParameterException
from rclpy.expand_topic_name import expand_topic_name
from rclpy.parameter import Parameter
from rclpy.validate_full_topic_name import validate_full_topic_name

from social_pose_diffusion.msgs.images import MAX_PIXELS
from social_pose_diffusion.perception.factory import BACKENDS
from social_pose_diffusion.perception.verify import DEFAULT_MIN_CONFIDENCE
from social_pose_diffusion.planning.agent import SEAT_RETURN_S


class ParameterError(ValueError):
    """An invalid parameter value at start-up; the message names the parameter and the rule."""

    def __init__(self, node: str, message: str):
        super().__init__(message)
        self.node = node


@dataclass(frozen=True)
class Spec:
    """One parameter: its default (which fixes its type), what it means and what it may be.

    ``low``/``high`` bound a number or every item of a number list (inclusive);
    ``choices`` lists the allowed strings; ``length`` the items of a list;
    ``check`` returns a reason for other invalid values (or None); ``read_only``
    parameters need a restart; ``applies`` says when a non-live change takes
    effect (e.g. 'at the next configure'), empty for live ones.
    """

    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    length: int | None = None
    check: Callable[[Any], str | None] | None = None
    read_only: bool = False
    applies: str = ''


def _is_float(spec: Spec) -> bool:
    items = spec.default if isinstance(spec.default, list) else [spec.default]
    return bool(items) and all(isinstance(v, float) for v in items)


def problem(spec: Spec, value: Any) -> str | None:
    """Why ``value`` is not allowed for ``spec`` (None when it is)."""
    items = value if isinstance(value, (list, tuple)) else [value]
    if spec.length is not None and len(items) != spec.length:
        return f'needs {spec.length} values, got {len(items)}'
    for v in items:
        if isinstance(v, float) and not math.isfinite(v):
            return f'must be finite, not {v}'
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if spec.low is not None and v < spec.low or spec.high is not None and v > spec.high:
                return f'{v} is outside [{spec.low}, {spec.high}]'
    if spec.choices is not None and value not in spec.choices:
        return f'{value!r} is not one of {", ".join(repr(c) for c in spec.choices)}'
    return spec.check(value) if spec.check is not None else None


def descriptor(spec: Spec) -> ParameterDescriptor:
    """The ROS descriptor of a spec: description, range, constraints, read-only."""
    rules = []
    if spec.length is not None:
        rules.append(f'{spec.length} values')
    if spec.low is not None or spec.high is not None:
        rules.append(f'in [{spec.low}, {spec.high}]')
    if spec.choices is not None:
        rules.append('one of ' + ', '.join(repr(c) for c in spec.choices))
    text = spec.description + (f' (applies {spec.applies})' if spec.applies else '')
    d = ParameterDescriptor(
        description=text, additional_constraints='; '.join(rules), read_only=spec.read_only
    )
    scalar = not isinstance(spec.default, list) and not isinstance(spec.default, bool)
    if scalar and spec.low is not None and spec.high is not None:
        if isinstance(spec.default, float):
            d.floating_point_range = [
                FloatingPointRange(from_value=float(spec.low), to_value=float(spec.high), step=0.0)
            ]
        elif isinstance(spec.default, int):
            d.integer_range = [
                IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=1)
            ]
    return d


class Parameters:
    """The current values of a node's parameters, declared from ``specs`` and refused when invalid.

    ``on_change(names)`` runs after a successful set with the names that
    changed; ``extra_check(name, value)`` adds a node's own rule (e.g. the
    samplers of the loaded model) and returns a reason or None.
    """

    def __init__(
        self,
        node,
        specs: dict[str, Spec],
        on_change: Callable[[set], None] | None = None,
        extra_check: Callable[[str, Any], str | None] | None = None,
    ):
        self._node, self._specs = node, specs
        self._on_change, self._extra_check = on_change, extra_check
        self._values: dict[str, Any] = {}
        node.add_on_set_parameters_callback(self._validate)
        for name, spec in specs.items():
            self._coerce_override(name, spec)
            try:
                node.declare_parameter(name, spec.default, descriptor(spec))
            except ParameterException as exc:
                raise ParameterError(
                    node.get_name(), f'invalid parameter {name}: {_reason(name, exc)}'
                ) from None
            self._values[name] = node.get_parameter(name).value
        node.add_post_set_parameters_callback(self._applied)

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def _coerce_override(self, name: str, spec: Spec) -> None:
        """An integer given for a double parameter (``-p rate:=30``, YAML ``0``): a double."""
        overrides = getattr(self._node, '_parameter_overrides', {})
        given = overrides.get(name)
        if given is None or not _is_float(spec):
            return
        value = given.value
        if isinstance(value, int) and not isinstance(value, bool):
            overrides[name] = Parameter(name, Parameter.Type.DOUBLE, float(value))
        elif (
            isinstance(value, (list, tuple))
            and value
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            overrides[name] = Parameter(
                name, Parameter.Type.DOUBLE_ARRAY, [float(v) for v in value]
            )

    def _validate(self, parameters: Iterable[Parameter]) -> SetParametersResult:
        for p in parameters:
            spec = self._specs.get(p.name)
            if spec is None:
                continue  # use_sim_time and other parameters rclpy declares
            value = p.value.tolist() if hasattr(p.value, 'tolist') else p.value
            reason = problem(spec, value)
            if reason is None and self._extra_check is not None:
                reason = self._extra_check(p.name, value)
            if reason is not None:
                return SetParametersResult(successful=False, reason=f'{p.name}: {reason}')
        return SetParametersResult(successful=True)

    def _applied(self, parameters: Iterable[Parameter]) -> None:
        changed = set()
        for p in parameters:
            spec = self._specs.get(p.name)
            if spec is None or p.name not in self._values:
                continue  # a declaration, not a change
            value = p.value.tolist() if hasattr(p.value, 'tolist') else p.value
            if value != self._values[p.name]:
                self._values[p.name] = value
                changed.add(p.name)
                if spec.applies:
                    self._node.get_logger().info(f'{p.name} = {value!r} applies {spec.applies}')
        if changed and self._on_change is not None:
            self._on_change(changed)


def _reason(name: str, exc: ParameterException) -> str:
    """The reason rclpy gives, without its generic preamble and the parameter's name."""
    text = str(exc).splitlines()[0].split('Reason: ', 1)[-1].removesuffix(f': {name}')
    return text.removeprefix(f'{name}: ')


def seat_u(value: float) -> str | None:
    """The facilitator's seat: an azimuth u in [0, 1), or -1 for unknown."""
    if value == -1.0 or 0.0 <= value < 1.0:
        return None
    return f'{value} is neither -1 (unknown) nor in [0, 1)'


def topic_name(value: str) -> str | None:
    """Why ``value`` is no ROS topic name (relative names allowed), checked as rcl expands it."""
    try:
        validate_full_topic_name(expand_topic_name(value, 'node', '/'))
    except (InvalidTopicNameException, ValueError) as exc:  # '...: <reason>[:], at <file>'
        reason = str(exc).splitlines()[0].split(', at ')[0].rstrip(':').split(': ')[-1]
        return f'{value!r} is not a topic name: {reason}'
    return None


def _known_sampler(value: str) -> str | None:
    """A sampler some policy family has ('' for the model's default); imported lazily (torch)."""
    if not value:
        return None
    from social_pose_diffusion.policy.samplers import SAMPLERS

    known = sorted(SAMPLERS)
    return None if value in known else f'{value!r} is not one of {", ".join(known)}'


# -- the parameters of the four nodes -------------------------------------------------------------
# Shared by the nodes that publish /diagnostics; applied live by recreating the timer.
DIAGNOSTICS_PERIOD = Spec(1.0, 'seconds between /diagnostics messages', low=0.05, high=3600.0)

# Inputs and the perception core are built once: read-only. The rest applies live.
KEYPOINTS = {
    'input': Spec(
        'image',
        "'image': run the perception core on camera frames; 'keypoints': take "
        "an external detector's keypoint cloud instead",
        choices=('image', 'keypoints'),
        read_only=True,
    ),
    'image_topic': Spec(
        '/camera/image_raw',
        'camera topic; compressed transport subscribes to <image_topic>/compressed',
        check=topic_name,
        read_only=True,
    ),
    'image_transport': Spec(
        'raw',
        "'raw' (sensor_msgs/Image) or 'compressed' (sensor_msgs/CompressedImage)",
        choices=('raw', 'compressed'),
        read_only=True,
    ),
    'image_reliability': Spec(
        'best_effort',
        "subscription reliability: 'best_effort' (sensor data) or 'reliable'",
        choices=('best_effort', 'reliable'),
        read_only=True,
    ),
    'external_topic': Spec(
        '/humans/keypoints_external',
        "keypoint cloud of an external detector (input 'keypoints')",
        check=topic_name,
        read_only=True,
    ),
    'backend': Spec(
        'mediapipe',
        'perception backend for camera frames (make_extractor)',
        choices=BACKENDS,
        read_only=True,
    ),
    'max_people': Spec(16, 'most people tracked per frame', low=1, high=64, read_only=True),
    'min_confidence': Spec(
        DEFAULT_MIN_CONFIDENCE,
        'evidence (pose flag, detector score, landmark visibility) that makes a new person; '
        "the same default as 'social-pose extract'",
        low=0.0,
        high=1.0,
        read_only=True,
    ),
    'track_confidence': Spec(
        0.2, 'pose flag a confirmed person keeps while tracked', low=0.0, high=1.0, read_only=True
    ),
    'budget_ms': Spec(
        50.0,
        'time per frame for landmark updates and discovery; 0: update everyone every frame',
        low=0.0,
        high=10_000.0,
        read_only=True,
    ),
    'max_staleness_ms': Spec(
        200.0,
        'update every person at least this often when the machine allows it',
        low=1.0,
        high=60_000.0,
        read_only=True,
    ),
    'flow': Spec(
        True,
        'move people between their landmark updates by optical flow (about 1 ms a person)',
        read_only=True,
    ),
    'hold_s': Spec(
        1.0,
        'seconds a missed person is still reported (predicted forward)',
        low=0.0,
        high=60.0,
        read_only=True,
    ),
    'discovery_period': Spec(
        30,
        'frames between MediaPipe detector scans for new people (0: only after a reset)',
        low=0,
        high=10**9,
        read_only=True,
    ),
    'facilitator_seat_u': Spec(
        -1.0,
        'azimuth (u in [0, 1)) of a facilitator the camera sees, '
        'published apart on /facilitator/observed and left out of '
        'the group; -1: nobody',
        low=-1.0,
        high=1.0,
        check=seat_u,
    ),
    'require_equirect': Spec(True, 'reject frames that are not 2:1 equirectangular'),
    'max_image_pixels': Spec(
        MAX_PIXELS,
        'largest decoded image (pixels) accepted; compressed '
        'images are checked from their header before decoding',
        low=1,
        high=10**10,
    ),
    'frame_id': Spec('', 'frame_id of the output; empty keeps the input header frame_id'),
    'diagnostics_period': DIAGNOSTICS_PERIOD,
}

CONFIGURE, ACTIVATE, PLAN = 'at the next configure', 'at the next activate', 'at the next plan'
POLICY = {
    'model_path': Spec(
        '',
        'policy model (stem, .safetensors/.json or directory); empty: the packaged default',
        applies=CONFIGURE,
    ),
    'device': Spec(
        'auto',
        "'auto' (cuda when available), 'cpu', 'cuda' or 'cuda:N'",
        applies=CONFIGURE,
        check=lambda v: (
            None
            if re.fullmatch(r'auto|cpu|cuda(:\d+)?', v)
            else f'{v!r} is not auto, cpu, cuda or cuda:N'
        ),
    ),
    'samples': Spec(
        4,
        'plans sampled per observation: their medoid is executed, their spread is '
        'the per-joint uncertainty (1: no uncertainty)',
        low=1,
        high=64,
        applies=PLAN,
    ),
    'sampler': Spec(
        '',
        "sampler override (e.g. 'ddim', 'diffusion_x', 'euler'); empty: the model's default",
        check=_known_sampler,
        applies=PLAN,
    ),
    'steps': Spec(
        0,
        'evaluations of a few-step sampler; 0: the model default',
        low=0,
        high=10000,
        applies=PLAN,
    ),
    'style': Spec(
        '',
        'the facilitator style to play, one the model was trained on (a model trained with '
        "--condition-on-style lists them in its config's styles); empty: the model's default",
        applies=PLAN,
    ),
    'control_rate': Spec(
        30.0,
        'rate of the control loop publishing /facilitator/pose (Hz)',
        low=0.1,
        high=1000.0,
        applies=ACTIVATE,
    ),
    'publish_on_plan': Spec(
        True,
        'publish a new plan at once and restart the control period from '
        'it (lower latency; intervals then vary between a quarter and '
        'one period); false: strictly fixed-rate output',
    ),
    'torch_threads': Spec(
        0, 'intra-op threads for torch; 0 leaves the default', low=0, high=256, applies=CONFIGURE
    ),
    'max_clock_offset': Spec(
        5.0,
        'observations stamped further than this (s) from the node clock '
        'are timed by their arrival instead (a bag played without '
        'use_sim_time)',
        low=0.001,
        high=1e6,
    ),
    'reanchor': Spec(
        0.0,
        'pull the integrated pose toward /facilitator/observed by this weight per plan',
        low=0.0,
        high=1.0,
    ),
    'seat_return_s': Spec(
        SEAT_RETURN_S,
        "time constant (s) with which the published shoulders come back to the episode's "
        'start: integrated deltas drift, a seated facilitator does not; 0: publish the '
        'integrated pose as it is',
        low=0.0,
        high=3600.0,
    ),
    'symmetric_plans': Spec(
        True,
        'draw half the plans for the mirrored scene and mirror them back, so the executed '
        'medoid favours no side the mirrored training data does not (a hand, a turn); '
        'false for a model trained on purposely one-sided behaviour',
        applies=PLAN,
    ),
    'idle_alone': Spec(
        True,
        'hold the pose while nobody is in view instead of sampling plans: there is nobody to '
        'respond to, and a perception dropout must not set the facilitator moving on its own '
        'motion (counted in the diagnostics)',
        applies=PLAN,
    ),
    'facilitator_seat_u': Spec(
        -1.0,
        "the facilitator's (robot's) azimuth u in [0, 1) in the "
        "camera frame: the model's neutral pose placed there starts "
        'every episode; -1: unknown',
        low=-1.0,
        high=1.0,
        check=seat_u,
        applies='at the next reset',
    ),
    'init_from_observed': Spec(
        False,
        'start (and restart after a reset) from the observed '
        'facilitator pose (/facilitator/observed) once one arrived',
        applies='at the next reset',
    ),
    'frame_id': Spec('camera', 'frame_id of /facilitator/pose'),
    'image_topic': Spec(
        '/camera/image_raw',
        "camera topic, used only by policies observing raw frames ('raw' encoder)",
        check=topic_name,
        applies=CONFIGURE,
    ),
    'image_transport': Spec(
        'raw',
        "'raw' or 'compressed' (<image_topic>/compressed), for 'raw'-encoder policies",
        choices=('raw', 'compressed'),
        applies=CONFIGURE,
    ),
    'autostart': Spec(True, 'configure and activate on start-up', read_only=True),
    'diagnostics_period': DIAGNOSTICS_PERIOD,
}


def unknown_start(values: Any, name: str = '', value: Any = None) -> str | None:
    """Why the facilitator cannot be placed with ``values`` (``name`` set to ``value``)."""
    values = {k: values[k] for k in ('facilitator_seat_u', 'init_from_observed')}
    if name in values:
        values[name] = value
    if values['facilitator_seat_u'] == -1.0 and not values['init_from_observed']:
        return (
            "the facilitator's start is unknown: set facilitator_seat_u (its azimuth u in "
            '[0, 1) in the camera frame) or init_from_observed (start from '
            '/facilitator/observed)'
        )
    return None


def agent_options(values: Any) -> dict:
    """The agent options (``FacilitatorAgent.configure``) of the policy node's ``values``.

    An empty sampler or style and 0 steps ask for the model's defaults.
    """
    return {
        'samples': values['samples'],
        'sampler': values['sampler'] or None,
        'steps': values['steps'] or None,
        'reanchor': values['reanchor'],
        'style': values['style'] or None,
        'seat_return_s': values['seat_return_s'],
        'symmetric': values['symmetric_plans'],
        'idle_alone': values['idle_alone'],
    }


RETARGET = {
    'max_velocity': Spec(
        6.0,
        'largest joint speed sent to the body (rad/s); 0 disables the limit',
        low=0.0,
        high=1000.0,
    ),
    'joint_prefix': Spec(
        '', 'prefix of every joint name (several bodies in one robot description)'
    ),
    'diagnostics_period': DIAGNOSTICS_PERIOD,
}

# Every parameter applies live, at the next message.
VISUALIZER = {
    'radius': Spec(
        2.0, 'distance (m) from the camera at which keypoints are drawn', low=0.01, high=1000.0
    ),
    'max_rate': Spec(
        15.0, 'most MarkerArray messages per second per input topic', low=0.1, high=1000.0
    ),
    'lifetime': Spec(
        0.5,
        'seconds a skeleton stays when its person is no longer published',
        low=0.0,
        high=3600.0,
    ),
    'group_color': Spec(
        [0.2, 0.6, 1.0, 1.0], 'RGBA of the group skeletons', low=0.0, high=1.0, length=4
    ),
    'facilitator_color': Spec(
        [1.0, 0.5, 0.0, 1.0], 'RGBA of the generated facilitator', low=0.0, high=1.0, length=4
    ),
    'min_confidence': Spec(0.1, 'joints below this confidence are not drawn', low=0.0, high=1.0),
}

NODES = {
    'keypoints_node': KEYPOINTS,
    'policy_node': POLICY,
    'retarget_node': RETARGET,
    'visualizer_node': VISUALIZER,
}
