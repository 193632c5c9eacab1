"""The policy: observation encoder + action network + normalisation, with sampling, saving and loading."""
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from social_pose_diffusion.core.atomic import write_bytes
from social_pose_diffusion.observation.features import proprio_size, token_size
from social_pose_diffusion.core.skeleton import NUM_JOINTS
from social_pose_diffusion.policy import samplers
from social_pose_diffusion.policy.objectives import bc_loss, diffusion_loss, flow_loss
from social_pose_diffusion.policy.networks import ActionTransformer, ObservationEncoder


class ModelError(ValueError):
    """A model directory or weights file that is missing, corrupt or does not match its config."""


def resolve_device(device='auto'):
    """``auto`` -> cuda when available, else cpu."""
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if device not in ('cpu', 'cuda') and not str(device).startswith('cuda:'):
        raise ValueError(f'device must be auto, cpu or cuda, not {device!r}')
    return torch.device(device)


class Policy(nn.Module):
    """Maps observations (numpy dicts from :mod:`..dataset`) to chunks of per-joint deltas.

    ``sample(obs, k)`` -> (B, k, H, J, 2) deltas in normalised equirect units;
    ``select_action(obs)`` -> (B, H, J, 2). ``evaluations`` counts action-network calls.
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        c = config
        self.encoder = ObservationEncoder(c.encoder, proprio_size(c.history, c.styles), token_size(c.lags, c.memory_s),
                                          c.d_model)
        self.net = ActionTransformer(c.action_dim, c.horizon, c.d_model, c.layers, c.heads,
                                     generative=c.policy in ('diffusion', 'flow'))
        self.schedule = samplers.Schedule(c.timesteps, c.beta_start, c.beta_end)
        self.register_buffer('action_scale', torch.ones(c.action_dim))
        self.register_buffer('proprio_mean', torch.zeros(proprio_size(c.history, c.styles)))
        self.register_buffer('proprio_std', torch.ones(proprio_size(c.history, c.styles)))
        self.register_buffer('token_mean', torch.zeros(token_size(c.lags, c.memory_s)))
        self.register_buffer('token_std', torch.ones(token_size(c.lags, c.memory_s)))
        self.evaluations = 0
        self._traces = {}

    @property
    def device(self):
        return self.action_scale.device

    def set_normalisation(self, actions, proprio, tokens, mask):
        """Per-coordinate scales from training arrays (numpy)."""
        def stats(x):
            x = torch.as_tensor(np.asarray(x, np.float64).reshape(-1, x.shape[-1]))
            return x.mean(0).float(), x.std(0).clamp(min=1e-4).float()
        _, scale = stats(np.asarray(actions).reshape(-1, self.config.action_dim))
        self.action_scale.copy_(scale)
        for name, arr in (('proprio', proprio), ('token', np.asarray(tokens)[np.asarray(mask)])):
            mean, std = stats(arr)
            getattr(self, f'{name}_mean').copy_(mean)
            getattr(self, f'{name}_std').copy_(std)

    def tensors(self, obs):
        """Normalised torch tensors on the policy's device from a numpy observation batch."""
        d = self.device
        out = {'proprio': (torch.as_tensor(obs['proprio'], device=d) - self.proprio_mean) / self.proprio_std}
        if self.config.encoder == 'vector':
            out['tokens'] = (torch.as_tensor(obs['tokens'], device=d) - self.token_mean) / self.token_std
            out['mask'] = torch.as_tensor(obs['mask'], device=d)
        else:
            if obs.get('image') is None:
                raise ValueError(f'a {self.config.encoder} policy needs an image in its observation')
            out['image'] = torch.as_tensor(obs['image'], device=d)
        return out

    def normalise(self, actions):
        """(B, H, J, 2) numpy deltas -> (B, H, A) tensor in units of the training std."""
        a = torch.as_tensor(np.asarray(actions, np.float32), device=self.device)
        return a.reshape(*a.shape[:2], -1) / self.action_scale

    def _traced(self, name, *args):
        """``getattr(self, name)(*args)`` through a TorchScript trace of that submodule, built on first use.

        Same kernels and results as the eager module with a third of its
        Python overhead, which dominates these small networks on a CPU. A
        trace shares the module's parameters (in-place updates such as
        training steps or ``load_state_dict`` show through) and is kept per
        submodule, training flag and device. ``torch.jit.trace`` is
        deprecated, but here ``torch.export`` runs slower than eager and
        ``torch.compile`` needs a C++ toolchain and seconds of start-up.
        """
        key = (name, self.training, self.device)
        if key not in self._traces:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                self._traces[key] = torch.jit.trace(getattr(self, name), args, check_trace=False, strict=False)
        return self._traces[key](*args)

    def _denoise(self, cond, x, t):
        self.evaluations += 1
        return self._traced('net', cond, x, t)

    def _without_group(self, obs):
        """The observation with nobody in view: what classifier-free guidance contrasts the group with."""
        return {**obs, 'mask': torch.zeros_like(obs['mask'])}

    def _guided(self, net, cond, uncond, w):
        """``net(x, t)`` of the conditional and the nobody-in-view tokens in one batch, mixed by guidance ``w``."""
        def call(x, t):
            both = net(torch.cat([cond, uncond]), torch.cat([x, x]), torch.cat([t, t]))
            c, u = both.chunk(2)
            return u + w * (c - u)
        return call

    def loss(self, obs, actions, generator=None):
        """The training loss of a diffusion, flow or BC policy on a batch."""
        p = self.config.group_dropout
        if p > 0 and 'mask' in obs:  # classifier-free guidance: some samples see nobody
            keep = torch.rand(obs['mask'].shape[0], generator=generator, device=obs['mask'].device) >= p
            obs = {**obs, 'mask': obs['mask'] & keep[:, None]}
        cond = self.encoder(obs)
        if self.config.policy == 'diffusion':
            return diffusion_loss(lambda x, t: self.net(cond, x, t.float() / self.config.timesteps),
                                  actions, self.schedule, generator)
        if self.config.policy == 'flow':
            return flow_loss(lambda x, tau: self.net(cond, x, tau), actions, generator)
        return bc_loss(self.net(cond), actions)

    def generate(self, cond, k=1, sampler=None, steps=None, generator=None, uncond=None):
        """Normalised action chunks (B * k, H, A) from conditioning tokens (repeated k times).

        With ``uncond`` (the tokens of nobody in view) every network call is
        guided by ``config.guidance`` (classifier-free guidance).
        """
        c = self.config
        sampler = sampler or c.sampler
        steps = steps or c.steps
        if c.policy in ('bc', 'dbc'):
            self.evaluations += 1
            return self.net(cond).repeat_interleave(k, 0)
        cond = cond.repeat_interleave(k, 0)
        x = torch.randn((cond.shape[0], c.horizon, c.action_dim), generator=generator, device=cond.device)
        net = lambda cc, y, t: self._denoise(cc, y, t)  # noqa: E731
        if uncond is not None:
            guided = self._guided(net, cond, uncond.repeat_interleave(k, 0), c.guidance)
            net = lambda cc, y, t: guided(y, t)  # noqa: E731
        if c.policy == 'flow':
            if sampler != 'euler':
                raise ValueError(f'a flow policy samples with euler, not {sampler!r}')
            return samplers.euler(lambda y, tau: net(cond, y, tau), x, steps)
        eps = lambda y, t: net(cond, y, t.float() / c.timesteps)  # noqa: E731
        if sampler == 'diffusion_x':
            return samplers.diffusion_x(eps, x, self.schedule, c.extra_steps, generator)
        if sampler == 'ddpm':
            return samplers.ddpm(eps, x, self.schedule, generator)
        if sampler == 'ddim':
            return samplers.ddim(eps, x, self.schedule, steps)
        raise ValueError(f'unknown sampler {sampler!r} for a diffusion policy (diffusion_x, ddpm, ddim)')

    @torch.inference_mode()
    def sample(self, obs, k=1, sampler=None, steps=None, generator=None):
        """``k`` chunks of deltas per observation: numpy (B, k, H, J, 2)."""
        tensors = self.tensors(obs)
        cond = self._traced('encoder', tensors)
        uncond = None
        if self.config.guidance != 1.0 and 'mask' in tensors:
            uncond = self._traced('encoder', self._without_group(tensors))
        b = cond.shape[0]
        x = self.generate(cond, k, sampler, steps, generator, uncond) * self.action_scale
        return x.reshape(b, k, self.config.horizon, NUM_JOINTS, 2).double().cpu().numpy()

    def select_action(self, obs, sampler=None, steps=None):
        """One chunk of deltas per observation: numpy (B, H, J, 2)."""
        return self.sample(obs, 1, sampler, steps)[:, 0]

    def save(self, path):
        """Atomically write ``path`` (.safetensors) and its config (same stem, .json)."""
        from safetensors.torch import save
        path = Path(path)
        text = json.dumps(self.config.to_dict(), indent=2)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        write_bytes(path, save(tensors, metadata={'config': text}))
        write_bytes(path.with_suffix('.json'), (text + '\n').encode())
