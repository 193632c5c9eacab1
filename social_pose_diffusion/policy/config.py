"""The JSON-serialisable description of a policy: observation, action chunk, network and sampler."""
from dataclasses import asdict, dataclass, field, fields

from social_pose_diffusion.core.skeleton import NUM_JOINTS

ENCODERS = ('vector', 'plotted', 'raw')
POLICIES = ('diffusion', 'flow', 'bc', 'dbc')
SAMPLERS = {'diffusion': ('diffusion_x', 'ddpm', 'ddim'), 'flow': ('euler',), 'bc': ('direct',), 'dbc': ('direct',)}
PRIORS = ('none', 'damped_velocity')
FORMAT = 'social_pose_diffusion.policy/1'


@dataclass
class PolicyConfig:
    """Everything needed to rebuild a policy besides its weights."""

    encoder: str = 'vector'
    policy: str = 'flow'
    horizon: int = 16            # action chunk: H future per-frame deltas
    history: int = 4             # proprioception: the facilitator's last K deltas
    lags: tuple = (6, 30, 60)    # participant motion over these many frames
    max_people: int = 8
    fps: float = 30.0
    d_model: int = 64
    layers: int = 2
    heads: int = 4
    timesteps: int = 50          # DDPM T (linear beta 1e-4..0.02)
    extra_steps: int = 8         # Diffusion-X M
    beta_start: float = 1e-4
    beta_end: float = 0.02
    sampler: str = ''            # default sampler ('' = first of SAMPLERS[policy])
    steps: int = 4               # evaluations of the few-step samplers (ddim, euler)
    neutral_pose: list = field(default_factory=list)   # (J, 2) a rest pose with the training bone lengths
    max_speed: list = field(default_factory=list)      # (J,) per-frame joint speed limit, normalised units
    prior: str = 'none'          # 'damped_velocity': the network predicts the rest of the chunk
    prior_decay_s: float = 0.3   # the prior's velocity time constant in seconds
    noise_scale: float = 1.0     # initial sampling noise (< 1 samples nearer the mode)
    residual_gain: float = 1.0   # with a prior: chunk = prior + gain * network (calibrated)
    format: str = FORMAT

    def __post_init__(self):
        self.lags = tuple(int(x) for x in self.lags)
        if self.encoder not in ENCODERS:
            raise ValueError(f'encoder must be one of {ENCODERS}, not {self.encoder!r}')
        if self.policy not in POLICIES:
            raise ValueError(f'policy must be one of {POLICIES}, not {self.policy!r}')
        if self.prior not in PRIORS:
            raise ValueError(f'prior must be one of {PRIORS}, not {self.prior!r}')
        if self.prior != 'none' and self.history < 1:
            raise ValueError('a damped_velocity prior needs history >= 1 (the last delta)')
        if not self.prior_decay_s > 0:
            raise ValueError(f'prior_decay_s must be > 0, not {self.prior_decay_s}')
        if not (0 <= self.noise_scale <= 1 and 0 <= self.residual_gain <= 1):
            raise ValueError(f'noise_scale and residual_gain must be in [0, 1], not '
                             f'{self.noise_scale} and {self.residual_gain}')
        self.sampler = self.sampler or SAMPLERS[self.policy][0]
        if self.sampler not in SAMPLERS[self.policy]:
            raise ValueError(f'a {self.policy} policy samples with {SAMPLERS[self.policy]}, not {self.sampler!r}')

    @property
    def action_dim(self):
        return NUM_JOINTS * 2

    def to_dict(self):
        d = asdict(self)
        d['lags'] = list(self.lags)
        return d

    @classmethod
    def from_dict(cls, d):
        """Rebuild from JSON; unknown keys or another format are errors."""
        if d.get('format') != FORMAT:
            raise ValueError(f'config format is {d.get("format")!r}, expected {FORMAT!r}')
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f'config has unknown keys {unknown}')
        return cls(**d)
