"""Torch modules.

Observation encoders, the Transformer action network and DBC's state-action denoiser.

The observation encoder runs once per frame; its tokens condition every
denoising step of the action network.
"""

import math
from collections.abc import Sequence

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of a (B,) float timestep in [0, 1]."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(1000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half
    )
    args = t.float()[:, None] * 1000.0 * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], -1)


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.SiLU()]
    return nn.Sequential(*layers[:-1])


class ImageEncoder(nn.Module):
    """A small strided CNN: (B, 128, 128, 3) uint8 BGR -> (B, D).

    GroupNorm after every convolution: without it the image token of a fresh
    network varies ~1000x less between frames than the proprioception token,
    so the action network ignores it and the CNN gets almost no gradient.
    """

    def __init__(self, d):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 5, stride=4, padding=2),
            nn.GroupNorm(4, 16),
            nn.SiLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.GroupNorm(8, 32),
            nn.SiLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.GroupNorm(8, 64),
            nn.SiLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1),
            nn.GroupNorm(8, 64),
            nn.SiLU(),
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, d),
        )

    def forward(self, image):
        return self.net(image.permute(0, 3, 1, 2).float() / 127.5 - 1.0)


class SetEncoder(nn.Module):
    """Participant tokens (B, P, F) with a mask -> (B, D) by masked mean and max pooling."""

    def __init__(self, f, d):
        super().__init__()
        self.token = mlp([f, d, d])
        self.out = mlp([2 * d + 1, d, d])

    def forward(self, tokens, mask):
        h = self.token(tokens)
        m = mask[..., None].float()
        count = m.sum(1)
        mean = (h * m).sum(1) / count.clamp(min=1.0)
        big = torch.finfo(h.dtype).max
        peak = torch.where(mask[..., None], h, -big).amax(1)
        peak = torch.where(count > 0, peak, torch.zeros_like(peak))
        return self.out(torch.cat([mean, peak, torch.log1p(count)], -1))


class PeopleEncoder(nn.Module):
    """Participant tokens (B, P, F) with a mask -> (B, 1 + P, D): the pooled group, then everyone.

    The action network attends to each person, so "look at whoever moves"
    or "invite the quietest" is one attention read of that person's seat
    rather than something a pooled vector must approximate. Absent people
    become one learned token the network learns to ignore.
    """

    def __init__(self, f, d):
        super().__init__()
        self.pooled = SetEncoder(f, d)
        self.absent = nn.Parameter(torch.zeros(d))

    def forward(self, tokens, mask):
        people = torch.where(mask[..., None], self.pooled.token(tokens), self.absent)
        return torch.cat([self.pooled(tokens, mask)[:, None], people], 1)


class AttentionEncoder(nn.Module):
    """Participant tokens (B, P, F), mask and target -> (B, 2, D): the group, the attended one.

    ``logits`` scores every person in view and "nobody" (the last column)
    from that person's embedding beside the pooled group; the second token is
    the embedding of ``target`` (a slot, -1 nobody, -2 not labelled), or of
    the best-scored choice when no target is given (sampling).
    """

    def __init__(self, f, d):
        super().__init__()
        self.pooled = SetEncoder(f, d)
        self.score = mlp([2 * d, d, 1])
        self.nobody = nn.Parameter(torch.zeros(d))
        self.nobody_score = nn.Parameter(torch.zeros(1))

    def _encode(self, tokens, mask):
        people = self.pooled.token(tokens)
        group = self.pooled(tokens, mask)
        scores = self.score(torch.cat([people, group[:, None].expand_as(people)], -1))[..., 0]
        scores = scores.masked_fill(~mask, -1e9)
        logits = torch.cat([scores, self.nobody_score.expand(len(scores), 1)], -1)
        return people, group, logits

    def logits(self, tokens, mask):
        """(B, P + 1) scores of each slot and of nobody (masked slots -1e9)."""
        return self._encode(tokens, mask)[2]

    @staticmethod
    def column(target, mask):
        """The logit column (B,) of labelled slots ``target``: nobody (P) for -1 or out of view.

        -2 (not labelled) stays -2.
        """
        target = target.long()
        rows = torch.arange(len(target), device=target.device)
        shown = (target >= 0) & mask[rows, target.clamp(min=0)]
        return torch.where(target == -2, -2, torch.where(shown, target, mask.shape[-1]))

    def forward(self, tokens, mask, target=None):
        people, group, logits = self._encode(tokens, mask)
        b = mask.shape[0]
        rows = torch.arange(b, device=mask.device)
        choice = logits.argmax(-1)
        if target is not None:
            column = self.column(target, mask)
            choice = torch.where(column == -2, choice, column)
        everyone = torch.cat([people, self.nobody.expand(b, 1, -1)], 1)
        return torch.stack([group, everyone[rows, choice]], 1)


class ObservationEncoder(nn.Module):
    """Observation -> conditioning tokens (B, N, D): the group's, then the proprioception.

    ``encoder`` is an entry of :data:`social_pose_diffusion.observation.encoders.ENCODERS`:
    it builds the group module and names the observation tensors it reads.
    """

    def __init__(self, encoder, proprio_dim, token_dim, d):
        super().__init__()
        self.inputs = encoder.inputs
        self.proprio = mlp([proprio_dim, d, d])
        self.group = encoder.network(token_dim, d)

    def forward(self, obs):
        group = self.group(*(obs.get(key) for key in self.inputs))
        if group.dim() == 2:  # one pooled token
            group = group[:, None]
        return torch.cat([group, self.proprio(obs['proprio'])[:, None]], 1)


class ActionTransformer(nn.Module):
    """Transformer over [conditioning, time, H action tokens] -> (B, H, A).

    ``generative=True``: inputs a noisy action chunk and a timestep (the
    diffusion/flow denoiser); ``False``: learned queries only (MSE-BC/DBC policy).
    """

    def __init__(self, action_dim, horizon, d, layers, heads, generative):
        super().__init__()
        self.generative, self.d = generative, d
        self.position = nn.Parameter(torch.randn(1, horizon, d) * 0.02)
        if generative:
            self.action_in = nn.Linear(action_dim, d)
            self.time = mlp([d, d, d])
        layer = nn.TransformerEncoderLayer(
            d, heads, 2 * d, dropout=0.0, activation='gelu', batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, action_dim))

    def forward(self, cond, x=None, t=None):
        b = cond.shape[0]
        if self.generative:
            tokens = [
                cond,
                self.time(timestep_embedding(t, self.d))[:, None],
                self.action_in(x) + self.position,
            ]
        else:
            tokens = [cond, self.position.expand(b, -1, -1)]
        h = self.blocks(torch.cat(tokens, 1))
        return self.head(h[:, -self.position.shape[1] :])


class StateActionDenoiser(nn.Module):
    """DBC's diffusion model of the joint (state, action) vector.

    Predicts the noise of all of it.
    """

    def __init__(self, dim, hidden=256):
        super().__init__()
        self.hidden = hidden
        self.net = mlp([dim + hidden, hidden, hidden, hidden, dim])

    def forward(self, x, t):
        return self.net(torch.cat([x, timestep_embedding(t, self.hidden)], -1))
