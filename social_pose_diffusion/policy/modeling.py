"""The policy.

Observation encoder + action network + normalisation, with sampling, saving and loading.
"""

import json
import warnings
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from social_pose_diffusion.core.atomic import write_bytes
from social_pose_diffusion.core.skeleton import NUM_JOINTS
from social_pose_diffusion.observation.features import proprio_size, style_code, token_size
from social_pose_diffusion.policy import samplers
from social_pose_diffusion.policy.networks import ActionTransformer, ObservationEncoder
from social_pose_diffusion.policy.prior import (
    decay_per_frame,
    last_delta,
    posture,
    prior_deltas,
    pull_per_frame,
    rest_deltas,
)


class ModelError(ValueError):
    """A model directory or weights file that is missing, corrupt or does not match its config."""


def resolve_device(device: str | torch.device = 'auto') -> torch.device:
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

    action_scale: torch.Tensor
    style_scale: torch.Tensor  # with config.style_units: (styles, A)

    def __init__(self, config):
        super().__init__()
        self.config = config
        c = config
        self.encoder = ObservationEncoder(
            c.encoder_spec,
            proprio_size(c.history, c.styles),
            token_size(c.lags, c.memory_s),
            c.d_model,
        )
        self.net = ActionTransformer(
            c.action_dim, c.horizon, c.d_model, c.layers, c.heads, generative=c.family.generative
        )
        self.schedule = samplers.Schedule(c.timesteps, c.beta_start, c.beta_end)
        self.register_buffer('action_scale', torch.ones(c.action_dim))
        if c.style_units:
            self.register_buffer('style_scale', torch.ones(len(c.styles), c.action_dim))
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
            if len(x) < 2:  # nothing to measure (nobody in view in any frame): unscaled
                return torch.zeros(x.shape[-1]), torch.ones(x.shape[-1])
            return x.mean(0).float(), x.std(0).clamp(min=1e-4).float()

        flat = np.asarray(actions).reshape(len(actions), -1, self.config.action_dim)
        _, scale = stats(flat)
        self.action_scale.copy_(scale)
        if self.config.style_units:
            code = style_code(proprio, self.config.styles) > 0.5
            for i in range(len(self.config.styles)):
                if code[:, i].any():
                    own = stats(flat[code[:, i]])[1] / scale
                    self.style_scale[i].copy_(own.clamp(0.05, 20.0))
        for name, arr in (('proprio', proprio), ('token', np.asarray(tokens)[np.asarray(mask)])):
            mean, std = stats(arr)
            getattr(self, f'{name}_mean').copy_(mean)
            getattr(self, f'{name}_std').copy_(std)

    def tensors(self, obs):
        """Normalised torch tensors on the policy's device from a numpy observation batch."""
        proprio = torch.as_tensor(obs['proprio'], device=self.device)
        return {
            'proprio': (proprio - self.proprio_mean) / self.proprio_std,
            **self.config.encoder_spec.tensors(obs, self),
        }

    def units(self, proprio) -> torch.Tensor:
        """(B, A) scale of normalised actions per sample: the pooled std, or the style's own.

        With ``style_units`` each style's actions are in units of their own spread, so one
        network predicts every style at the same size: with pooled units, the musician's
        turns (a third of the teacher's) took a size between the styles'. The style code
        of the (numpy) proprioception picks the row; no style said, the pooled std.
        """
        if not self.config.style_units:
            return self.action_scale.expand(len(proprio), -1)
        code = torch.as_tensor(style_code(proprio, self.config.styles), device=self.device)
        return self.action_scale * (1.0 + code @ (self.style_scale - 1.0))

    def normalise(self, actions, proprio=None):
        """(B, H, J, 2) numpy deltas -> (B, H, A) tensor in units of the training std.

        ``proprio`` (numpy, as the network sees it) picks each sample's style units.
        """
        a = torch.as_tensor(np.asarray(actions, np.float32), device=self.device)
        scale = self.action_scale if proprio is None else self.units(proprio)[:, None]
        return a.reshape(*a.shape[:2], -1) / scale

    def _traced(self, name, *args):
        """``getattr(self, name)(*args)`` through a TorchScript trace of that submodule.

        Built on first use.

        Same kernels and results as the eager module with a third of its
        Python overhead, which dominates these small networks on a CPU. A
        trace shares the module's parameters (in-place updates such as
        training steps or ``load_state_dict`` show through) and is kept per
        submodule, training flag, device and input keys. ``torch.jit.trace`` is
        deprecated, but here ``torch.export`` runs slower than eager and
        ``torch.compile`` needs a C++ toolchain and seconds of start-up.
        """
        key = (name, self.training, self.device, *(tuple(a) for a in args if isinstance(a, dict)))
        if key not in self._traces:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                self._traces[key] = torch.jit.trace(
                    getattr(self, name), args, check_trace=False, strict=False
                )
        return self._traces[key](*args)

    def denoise(self, cond, x, t):
        """One counted evaluation of the (traced) action network."""
        self.evaluations += 1
        return self._traced('net', cond, x, t)

    def guided(self, cond, uncond, x, t):
        """One counted evaluation guided away from nobody in view.

        v_nobody + w (v_group - v_nobody).

        The conditional and the nobody-in-view tokens go through the network as one batch.
        """
        both = self.denoise(torch.cat([cond, uncond]), torch.cat([x, x]), torch.cat([t, t]))
        with_group, nobody = both.chunk(2)
        return nobody + self.config.guidance * (with_group - nobody)

    @staticmethod
    def without_group(obs):
        """The observation with nobody in view.

        What classifier-free guidance contrasts the group with.
        """
        return {**obs, 'mask': torch.zeros_like(obs['mask'])}

    def loss(self, obs, actions, generator=None, weight=None):
        """The training loss of the policy's family on a batch of normalised tensors.

        ``weight`` (B, H, J) masks unseen steps. With ``group_dropout`` a share of
        the samples sees nobody, so the model also learns what to do without the
        group (classifier-free guidance).
        """
        if weight is not None:  # per joint -> per action coordinate (B, H, A)
            weight = torch.as_tensor(np.asarray(weight, np.float32), device=self.device)
            weight = weight.repeat_interleave(2, -1)
        p = self.config.group_dropout
        if p > 0 and 'mask' in obs:
            keep = (
                torch.rand(obs['mask'].shape[0], generator=generator, device=obs['mask'].device)
                >= p
            )
            obs = {**obs, 'mask': obs['mask'] & keep[:, None]}
        loss = self.config.family.loss(self, self.encoder(obs), actions, generator, weight)
        if 'target' in obs:  # an attention encoder: its pointer learns whom the facilitator faces
            loss = loss + self.attention_loss(obs)
        return loss

    def attention_loss(self, obs):
        """Cross-entropy of the attention pointer against the labelled slots (nobody: last)."""
        group = self.encoder.group
        logits = group.logits(obs['tokens'], obs['mask'])
        labels = group.column(obs['target'], obs['mask'])
        labels = torch.where(labels == -2, -100, labels)
        if not (labels != -100).any():
            return logits.sum() * 0.0
        return F.cross_entropy(logits, labels, ignore_index=-100)

    def generate(self, cond, k=1, sampler=None, steps=None, generator=None, uncond=None):
        """Normalised action chunks (B * k, H, A) from conditioning tokens (repeated k times).

        ``sampler`` and ``steps`` (sampler steps: evaluations of ddim and euler)
        override the config's defaults; with ``uncond`` (the tokens of nobody in
        view) every evaluation is guided by ``config.guidance``.
        """
        if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
            raise ValueError(f'k (chunks per observation) must be a positive integer, not {k!r}')
        spec, run = self._sampler(sampler, steps, generator)
        return self.config.family.generate(self, cond, k, spec, run, uncond)

    def _sampler(self, sampler=None, steps=None, generator=None):
        c = self.config
        spec = c.family.sampler(sampler or c.sampler)
        steps = c.steps if steps is None else steps
        if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 1:
            raise ValueError(f'sampler steps must be a positive integer, not {steps!r}')
        return spec, samplers.Run(self.schedule, steps, c.extra_steps, generator)

    def sampler_evaluations(self, sampler=None, steps=None) -> int:
        """Network evaluations of one generation with ``sampler``, ``steps`` or the defaults."""
        spec, run = self._sampler(sampler, steps)
        return spec.evaluations(run)

    def prior(self, obs):
        """The config's prior chunk (B, H, J, 2) from the proprioception.

        The chunk is numpy, or 0 without a prior; see :mod:`~.policy.prior`.
        """
        c = self.config
        if c.prior == 'none':
            return 0.0
        decay = decay_per_frame(c.fps, c.prior_decay_s)
        pull = pull_per_frame(c.fps, c.prior_rest_s) if c.prior == 'rest' else 0.0
        proprio = obs['proprio']
        if not pull:
            return prior_deltas(last_delta(proprio, c.history), c.horizon, decay)
        return rest_deltas(
            last_delta(proprio, c.history),
            posture(proprio),
            c.rest_posture,
            c.horizon,
            decay,
            pull,
        )

    @torch.inference_mode()
    def sample(self, obs, k=1, sampler=None, steps=None, generator=None):
        """``k`` chunks of deltas per observation (a prior added back): numpy (B, k, H, J, 2)."""
        tensors = self.tensors(obs)
        cond = self._traced('encoder', tensors)
        uncond = None
        if self.config.guidance != 1.0 and 'mask' in tensors:
            uncond = self._traced('encoder', self.without_group(tensors))
        b = cond.shape[0]
        x = self.generate(cond, k, sampler, steps, generator, uncond)
        x = x * self.units(obs['proprio']).repeat_interleave(k, 0)[:, None]
        x = x.reshape(b, k, self.config.horizon, NUM_JOINTS, 2).double().cpu().numpy()
        prior = self.prior(obs)
        if not np.ndim(prior):
            return x
        return self.config.residual_gain * x + prior[:, None]

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
