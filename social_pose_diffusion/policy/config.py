"""The JSON-serialisable description of a policy: observation, action chunk, network and sampler.

Every field is checked against :data:`SCHEMA` when a config is built, so a
model file with a wrong type, a non-finite number or a misshapen pose is
refused when it is loaded, naming the field, instead of failing inside torch
or publishing NaN poses later.
"""

import math
from dataclasses import asdict, dataclass, field, fields
from numbers import Real

from social_pose_diffusion.core.skeleton import BONES, NUM_JOINTS
from social_pose_diffusion.observation.encoders import ENCODERS, VectorEncoder
from social_pose_diffusion.policy.families import FAMILIES, Family
from social_pose_diffusion.policy.samplers import SAMPLERS

PRIORS = ('none', 'damped_velocity', 'rest')
FORMAT = 'social_pose_diffusion.policy/1'

__all__ = ['ENCODERS', 'FAMILIES', 'FORMAT', 'SAMPLERS', 'PolicyConfig']


def _integer(value, low, high):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f'must be an integer, not {type(value).__name__} {value!r}')
    if not low <= value <= high:
        raise ValueError(f'must be in [{low}, {high}], got {value}')
    return value


def _number(value, low=-math.inf, high=math.inf, positive=False):
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f'must be a number, not {type(value).__name__} {value!r}')
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f'must be finite, got {value}')
    if not low <= value <= high or (positive and value <= 0):
        raise ValueError(
            f'must be {"> 0 and " if positive else ""}in [{low}, {high}], got {value}'
        )
    return value


def _sequence(value, length=None, most=None):
    if not isinstance(value, (list, tuple)):
        raise ValueError(f'must be a list, not {type(value).__name__}')
    if (length is not None and len(value) != length) or (most is not None and len(value) > most):
        raise ValueError(
            f'must have {length if length is not None else f"at most {most}"} '
            f'entries, got {len(value)}'
        )
    return value


def _choice(names):
    def check(value):
        if not isinstance(value, str) or value not in names:
            raise ValueError(f'must be one of {", ".join(names)}, not {value!r}')
        return value

    return check


def _flag(value):
    if not isinstance(value, bool):
        raise ValueError(f'must be true or false, not {value!r}')
    return value


def _name(value):
    if not isinstance(value, str) or not value:
        raise ValueError(f'must hold non-empty names, not {value!r}')
    return value


def _pose(value):
    """Empty (not measured yet) or a (J, 2) list of finite numbers."""
    if len(_sequence(value)) == 0:
        return []
    return [[_number(x) for x in _sequence(row, 2)] for row in _sequence(value, NUM_JOINTS)]


def _speeds(value):
    """Empty (not measured yet) or J positive finite numbers."""
    if len(_sequence(value)) == 0:
        return []
    return [_number(x, positive=True) for x in _sequence(value, NUM_JOINTS)]


def _limits(value):
    """Empty (none) or the rows of :class:`~.core.posture.PostureLimits`.

    ``[centre, low, high]`` per link, then the neck's ``[shortest, longest]``.
    """
    if len(_sequence(value)) == 0:
        return []
    rows = _sequence(value, len(BONES) + 2)
    links = [[_number(x, -10.0, 10.0) for x in _sequence(row, 3)] for row in rows[:-1]]
    if any(low > high for _, low, high in links):
        raise ValueError('must have low <= high in every link')
    short, long = (_number(x, 0.0, 10.0) for x in _sequence(rows[-1], 2))
    if short > long:
        raise ValueError(f'neck lengths must be shortest <= longest, got {short} > {long}')
    return links + [[short, long]]


# field -> check(value) returning the normalised value or raising ValueError (why it is wrong).
SCHEMA = {
    'encoder': _choice(tuple(ENCODERS)),
    'policy': _choice(tuple(FAMILIES)),
    'horizon': lambda v: _integer(v, 1, 1000),
    'history': lambda v: _integer(v, 1, 1000),
    'lags': lambda v: tuple(_integer(x, 1, 100_000) for x in _sequence(v, most=16)),
    'memory_s': lambda v: tuple(
        _number(x, 0.0, 3600.0, positive=True) for x in _sequence(v, most=8)
    ),
    'styles': lambda v: tuple(_name(x) for x in _sequence(v, most=64)),
    'style_units': _flag,
    'max_people': lambda v: _integer(v, 1, 256),
    'fps': lambda v: _number(v, 0.0, 1000.0, positive=True),
    'd_model': lambda v: _integer(v, 2, 4096),
    'layers': lambda v: _integer(v, 1, 64),
    'heads': lambda v: _integer(v, 1, 4096),
    'timesteps': lambda v: _integer(v, 1, 10_000),
    'extra_steps': lambda v: _integer(v, 0, 10_000),
    'beta_start': lambda v: _number(v, 0.0, 1.0, positive=True),
    'beta_end': lambda v: _number(v, 0.0, 1.0, positive=True),
    'sampler': _choice(('',) + tuple(SAMPLERS)),
    'steps': lambda v: _integer(v, 1, 10_000),
    'group_dropout': lambda v: _number(v, 0.0, 1.0),
    'prior': _choice(PRIORS),
    'prior_decay_s': lambda v: _number(v, 0.0, 3600.0, positive=True),
    'prior_rest_s': lambda v: _number(v, 0.0, 3600.0),
    'rest_posture': _pose,
    'noise_scale': lambda v: _number(v, 0.0, 1.0),
    'residual_gain': lambda v: _number(v, 0.0, 1.0),
    'guidance': lambda v: _number(v, 0.0, 100.0),
    'plan_weight': lambda v: _number(v, 0.0, 1.0, positive=True),
    'neutral_pose': _pose,
    'max_speed': _speeds,
    'posture_limits': _limits,
    'format': _choice((FORMAT,)),
}


@dataclass
class PolicyConfig:
    """Everything needed to rebuild a policy besides its weights."""

    encoder: str = 'vector'
    policy: str = 'flow'
    horizon: int = 16  # action chunk: H future per-frame deltas
    history: int = 4  # proprioception: the facilitator's last K deltas
    lags: tuple = (6, 30, 60)  # participant motion over these many frames
    memory_s: tuple = ()  # participants' motion memory: time constants in seconds
    styles: tuple = ()  # styles the policy can be asked for (a one-hot in its proprioception)
    style_units: bool = False  # actions in units of their style's own spread (Policy.units)
    max_people: int = 8
    fps: float = 30.0
    d_model: int = 64
    layers: int = 2
    heads: int = 4
    timesteps: int = 50  # DDPM T (linear beta 1e-4..0.02)
    extra_steps: int = 8  # Diffusion-X M
    beta_start: float = 1e-4
    beta_end: float = 0.02
    sampler: str = ''  # default sampler ('' = the family's first)
    steps: int = 4  # sampler steps: network evaluations of ddim and euler
    group_dropout: float = (
        0.0  # training: share of samples that see nobody (classifier-free guidance)
    )
    guidance: float = 1.0  # sampling: w in v_nobody + w (v_group - v_nobody); 1 = conditional
    plan_weight: float = 1.0  # temporal ensembling: a new plan's weight against the last (1: none)
    neutral_pose: list = field(default_factory=list)  # (J, 2) rest pose, training bone lengths
    max_speed: list = field(default_factory=list)  # (J,) per-frame joint speed limit
    posture_limits: list = field(default_factory=list)  # core.posture.PostureLimits rows
    prior: str = 'none'  # damped_velocity, rest (see policy.prior): the network adds a residual
    prior_decay_s: float = 0.3  # the prior's velocity time constant in seconds
    prior_rest_s: float = 0.0  # 'rest': time constant of the pull to rest_posture (0: none)
    rest_posture: list = field(default_factory=list)  # (J, 2) prior.posture of the rest pose
    noise_scale: float = 1.0  # initial sampling noise (< 1 samples nearer the mode)
    residual_gain: float = 1.0  # with a prior: chunk = prior + gain * network (calibrated)
    format: str = FORMAT

    def __post_init__(self):
        """Check and normalise every field; a ValueError names the field."""
        for f in fields(self):
            try:
                setattr(self, f.name, SCHEMA[f.name](getattr(self, f.name)))
            except ValueError as exc:
                raise ValueError(f'{f.name} {exc}') from None
        if self.d_model % 2:
            raise ValueError(f'd_model must be even (sine and cosine halves), got {self.d_model}')
        if self.d_model % self.heads:
            raise ValueError(f'heads {self.heads} must divide d_model {self.d_model}')
        if self.style_units and not self.styles:
            raise ValueError('style_units needs styles to measure the units of')
        if self.beta_start > self.beta_end:
            raise ValueError(f'beta_start {self.beta_start} must be <= beta_end {self.beta_end}')
        if self.prior != 'none' and self.history < 1:
            raise ValueError('a damped_velocity prior needs history >= 1 (the last delta)')
        if self.prior == 'rest' and self.prior_rest_s > 0 and not self.rest_posture:
            raise ValueError('a rest prior with prior_rest_s > 0 needs its rest_posture')
        self.sampler = self.sampler or self.family.samplers[0]
        try:
            self.family.sampler(self.sampler)
        except ValueError as exc:
            raise ValueError(f'sampler: {exc}') from None

    @property
    def family(self) -> Family:
        """The policy family (:data:`FAMILIES`): training loss and generation."""
        return FAMILIES[self.policy]

    @property
    def encoder_spec(self) -> VectorEncoder:
        """The observation encoder (:data:`ENCODERS`): features, torch module, camera use."""
        return ENCODERS[self.encoder]

    @property
    def action_dim(self) -> int:
        return NUM_JOINTS * 2

    def to_dict(self) -> dict:
        d = asdict(self)
        d['lags'] = list(self.lags)
        d['memory_s'] = list(self.memory_s)
        d['styles'] = list(self.styles)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> 'PolicyConfig':
        """Rebuild from a parsed JSON object; unknown keys or another format are errors."""
        if not isinstance(d, dict):
            raise ValueError(f'must be a JSON object, not a {type(d).__name__}')
        if d.get('format') != FORMAT:
            raise ValueError(f'format is {d.get("format")!r}, expected {FORMAT!r}')
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f'unknown keys {unknown}')
        missing = [k for k in ('neutral_pose', 'max_speed') if not d.get(k)]
        if missing:
            raise ValueError(
                f'{" and ".join(missing)} missing: a trained model has both '
                f'for its {NUM_JOINTS} joints'
            )
        return cls(**d)
