"""Evaluation metrics in normalised equirect units (u wraps), on numpy arrays.

Poses are ``(..., J, 2)``; sample sets ``(N, k, H, J, 2)`` with the truth ``(N, H, J, 2)``.
"""
import numpy as np

from social_pose_diffusion.core.skeleton import JOINT, apply_delta, bone_lengths, joint_distance, mpjpe


def one_step_mpjpe(prev_true, delta, next_true):
    """Teacher-forced MPJPE: the previous true pose moved by the predicted delta vs the next true pose."""
    return mpjpe(apply_delta(prev_true, delta), next_true)


def bone_length_error(poses, lengths):
    """Mean relative bone-length error of ``poses`` against the person's ``lengths``."""
    return float(np.mean(np.abs(bone_lengths(poses) - lengths) / np.asarray(lengths)))


def best_of_k_ade(samples, truth):
    """Mean over N of the smallest average displacement error among the k samples."""
    ade = joint_distance(samples, np.asarray(truth)[:, None]).mean((-1, -2))
    return float(ade.min(1).mean())


def diversity(samples):
    """Average pairwise distance between the k samples (APD), mean over N; 0 for k = 1."""
    k = samples.shape[1]
    if k < 2:
        return 0.0
    d = joint_distance(samples[:, :, None], samples[:, None]).mean((-1, -2))
    return float(d.sum((1, 2)).mean() / (k * (k - 1)))


def timing(seconds):
    """Mean and p95 in milliseconds."""
    ms = np.asarray(seconds, np.float64) * 1e3
    return {'mean_ms': float(ms.mean()), 'p95_ms': float(np.percentile(ms, 95))} if len(ms) else {}


def wrist_lift(poses, start):
    """Largest distance (over time) of each wrist from its ``start`` position: (..., 2) for (left, right)."""
    wrists = [JOINT['left_wrist'], JOINT['right_wrist']]
    return joint_distance(poses[..., wrists, :], np.asarray(start)[..., None, wrists, :]).max(-2)


def hand_choice(lifts, reference, onset, gesture=0.3, commit=3.0):
    """Classify sampled invitation gestures by wrist lift relative to the true lift ``reference``.

    ``lifts`` (N, 2) left/right wrist lift of N samples, ``onset`` (N,) which
    observation each sample was drawn for. A sample gestures when its higher
    wrist reaches ``gesture`` x reference; it is ``left`` (``right``) when that
    wrist lifts at least ``commit`` times as far as the other, else
    ``between`` (both wrists raised: an average of the two modes). Returns the
    gesture rate, the shares of left/right/between among gestures, and
    ``both_hands``: the fraction of observations whose samples include a
    left and a right gesture (a deterministic policy scores 0).
    """
    r = np.asarray(lifts, np.float64) / np.asarray(reference, np.float64).reshape(-1, 1)
    onset = np.asarray(onset)
    moved = r.max(1) >= gesture
    left = moved & (r[:, 0] >= commit * r[:, 1])
    right = moved & (r[:, 1] >= commit * r[:, 0])
    between = moved & ~left & ~right
    n = max(int(moved.sum()), 1)
    groups = np.unique(onset)
    both = [left[onset == g].any() and right[onset == g].any() for g in groups]
    return {'samples': int(len(r)), 'gesture_rate': float(moved.mean()) if len(r) else 0.0,
            'left': float(left.sum() / n), 'right': float(right.sum() / n), 'between': float(between.sum() / n),
            'both_hands': float(np.mean(both)) if len(groups) else 0.0}
