"""The observation encoders a policy can be built with, one class each.

An encoder says what the group part of an observation is (participant
tokens, a plotted keypoint image or the camera frame), which torch module
turns it into a conditioning token, and whether the policy needs the camera
stream. The dataset, the agent, the policy and the command line all ask
:data:`ENCODERS` instead of comparing names, so a new encoder is one class
here plus one entry.
"""

import numpy as np
from numpy.typing import ArrayLike

from social_pose_diffusion.observation.raster import plot_people, resize_frame


class VectorEncoder:
    """Participant tokens pooled by a set encoder; the image encoders below derive from it."""

    name = 'vector'
    needs_camera = False  # observes camera frames: training and the node need the camera stream
    image_input = False  # observations carry a 128x128 BGR ``image``
    attends = False  # learns whom the facilitator faces: training samples carry ``target``
    # observation keys the torch module reads, in call order
    inputs: tuple[str, ...] = ('tokens', 'mask')

    def image(
        self, participants: ArrayLike, facilitator_pose: ArrayLike, frame: np.ndarray | None = None
    ) -> np.ndarray | None:
        """The (128, 128, 3) uint8 observation image of one frame, or None without one."""
        return None

    def network(self, token_dim: int, d: int):
        """The torch module: the :attr:`inputs` tensors -> (B, d)."""
        from social_pose_diffusion.policy.networks import SetEncoder

        return SetEncoder(token_dim, d)

    def tensors(self, obs: dict, policy) -> dict:
        """The normalised torch inputs of a numpy observation batch on ``policy``'s device."""
        import torch

        d = policy.device
        tokens = (torch.as_tensor(obs['tokens'], device=d) - policy.token_mean) / policy.token_std
        out = {'tokens': tokens, 'mask': torch.as_tensor(obs['mask'], device=d)}
        if self.attends and 'target' in obs:
            out['target'] = torch.as_tensor(obs['target'], device=d)
        return out


class PeopleEncoder(VectorEncoder):
    """The same participant tokens, each one a token the action network attends to."""

    name = 'people'

    def network(self, token_dim: int, d: int):
        from social_pose_diffusion.policy.networks import PeopleEncoder

        return PeopleEncoder(token_dim, d)


class AttentionEncoder(VectorEncoder):
    """The same participant tokens, and a learnt pointer to the one the facilitator faces.

    The pointer is trained as a classifier on whom the demonstration faces
    (cross-entropy, beside the action loss); the action network is conditioned
    on that person's token (the label in training, the pointer's choice when
    sampling), so "whom" is decided once per frame rather than left to the
    denoiser.
    """

    name = 'attention'
    attends = True
    inputs = ('tokens', 'mask', 'target')

    def network(self, token_dim: int, d: int):
        from social_pose_diffusion.policy.networks import AttentionEncoder

        return AttentionEncoder(token_dim, d)


class PlottedEncoder(VectorEncoder):
    """Everyone's keypoints drawn on a white canvas, seen by a small CNN."""

    name = 'plotted'
    image_input = True
    inputs = ('image',)

    def image(
        self, participants: ArrayLike, facilitator_pose: ArrayLike, frame: np.ndarray | None = None
    ) -> np.ndarray:
        return plot_people(participants, facilitator_pose)

    def network(self, token_dim: int, d: int):
        from social_pose_diffusion.policy.networks import ImageEncoder

        return ImageEncoder(d)

    def tensors(self, obs: dict, policy) -> dict:
        import torch

        if obs.get('image') is None:
            raise ValueError(f'a {self.name} policy needs an image in its observation')
        return {'image': torch.as_tensor(obs['image'], device=policy.device)}


class RawEncoder(PlottedEncoder):
    """The camera frame itself, resized, seen by the same CNN."""

    name = 'raw'
    needs_camera = True

    def image(
        self, participants: ArrayLike, facilitator_pose: ArrayLike, frame: np.ndarray | None = None
    ) -> np.ndarray:
        if frame is None:
            raise ValueError(
                'a raw-encoder policy observes camera frames, and none was given '
                '(a bag with a camera topic, or image= for the agent)'
            )
        return resize_frame(frame)


ENCODERS = {
    e.name: e
    for e in (
        VectorEncoder(),
        PeopleEncoder(),
        AttentionEncoder(),
        PlottedEncoder(),
        RawEncoder(),
    )
}
