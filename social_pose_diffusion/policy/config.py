"""The JSON-serialisable description of a policy: observation, action chunk, network and sampler."""
from dataclasses import asdict, dataclass, field, fields

from social_pose_diffusion.core.skeleton import NUM_JOINTS

ENCODERS = ('vector', 'plotted', 'raw')
POLICIES = ('diffusion', 'flow', 'bc', 'dbc')
SAMPLERS = {'diffusion': ('diffusion_x', 'ddpm', 'ddim'), 'flow': ('euler',), 'bc': ('direct',), 'dbc': ('direct',)}
FORMAT = 'social_pose_diffusion.policy/1'


@dataclass
class PolicyConfig:
    """Everything needed to rebuild a policy besides its weights."""

    encoder: str = 'vector'
    policy: str = 'flow'
    horizon: int = 16            # action chunk: H future per-frame deltas
    history: int = 4             # proprioception: the facilitator's last K deltas
    lags: tuple = (6, 30, 60)    # participant motion over these many frames
    memory_s: tuple = ()         # participants' motion memory: time constants in seconds
    styles: tuple = ()           # facilitator styles the policy can be asked for (a one-hot in its proprioception)
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
    group_dropout: float = 0.0   # training: share of samples that see nobody (classifier-free guidance)
    guidance: float = 1.0        # sampling: w in v_nobody + w (v_group - v_nobody); 1 = plain conditional
    neutral_pose: list = field(default_factory=list)   # (J, 2) a rest pose with the training bone lengths
    max_speed: list = field(default_factory=list)      # (J,) per-frame joint speed limit, normalised units
    format: str = FORMAT

    def __post_init__(self):
        self.lags = tuple(int(x) for x in self.lags)
        self.memory_s = tuple(float(x) for x in self.memory_s)
        self.styles = tuple(str(x) for x in self.styles)
        if self.encoder not in ENCODERS:
            raise ValueError(f'encoder must be one of {ENCODERS}, not {self.encoder!r}')
        if self.policy not in POLICIES:
            raise ValueError(f'policy must be one of {POLICIES}, not {self.policy!r}')
        self.sampler = self.sampler or SAMPLERS[self.policy][0]
        if self.sampler not in SAMPLERS[self.policy]:
            raise ValueError(f'a {self.policy} policy samples with {SAMPLERS[self.policy]}, not {self.sampler!r}')

    @property
    def action_dim(self):
        return NUM_JOINTS * 2

    def to_dict(self):
        d = asdict(self)
        d['lags'] = list(self.lags)
        d['memory_s'] = list(self.memory_s)
        d['styles'] = list(self.styles)
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
