"""Scoring what the live node graph published.

The report numbers from recorded output messages (no ROS).

:func:`score` turns the serialized outputs a replay recorded (with their
arrival times) into MPJPE against the session's ground truth, next to holding
the first true pose, end-to-end latency (image published -> first pose planned
from it received, named by the pose's ``obs_age`` field), output rate,
control interval and dropped frames; the metric code is the offline one.
"""

from pathlib import Path

import numpy as np

from social_pose_diffusion.core.skeleton import NUM_JOINTS, joint_distance
from social_pose_diffusion.evaluation.metrics import timing
from social_pose_diffusion.msgs.keypoint_cloud import cloud_field, cloud_to_frame, stamp_ns
from social_pose_diffusion.msgs.topics import (
    DIAGNOSTICS_TOPIC,
    FACILITATOR_TOPIC,
    GROUP_TOPIC,
    JOINT_STATES_TOPIC,
    OBSERVED_TOPIC,
    POSE_TOPIC,
)
from social_pose_diffusion.sources.bags import CLOUD, TYPESTORE, SessionWriter, read_messages

# The graph outputs a replay records, by message type.
OUTPUT_TYPES = {
    GROUP_TOPIC: CLOUD,
    OBSERVED_TOPIC: CLOUD,
    POSE_TOPIC: CLOUD,
    JOINT_STATES_TOPIC: 'sensor_msgs/msg/JointState',
    DIAGNOSTICS_TOPIC: 'diagnostic_msgs/msg/DiagnosticArray',
}


def score(received, sent, session=None, diagnostics=True):
    """The report's numbers from the recorded outputs (see the module docstring)."""
    sent_stamps = np.array(sorted(sent), np.int64)
    poses, stamps, sources, arrivals, clouds = [], [], [], [], set()
    last_diag = {}
    for arrival, _, topic, raw in received:
        if topic == POSE_TOPIC:
            msg = TYPESTORE.deserialize_cdr(raw, CLOUD)
            frame = cloud_to_frame(msg)
            age = cloud_field(msg, 'obs_age')
            if not len(frame) or age is None:
                continue
            stamps.append(stamp_ns(msg))
            poses.append(frame.keypoints[0, :, :2])
            sources.append(stamp_ns(msg) - int(round(float(age[0]) * 1e9)))
            arrivals.append(arrival)
        elif topic == GROUP_TOPIC:
            clouds.add(stamp_ns(TYPESTORE.deserialize_cdr(raw, CLOUD)))
        elif topic == DIAGNOSTICS_TOPIC and diagnostics:
            msg = TYPESTORE.deserialize_cdr(raw, OUTPUT_TYPES[DIAGNOSTICS_TOPIC])
            for status in msg.status:
                last_diag[status.name] = {
                    'level': int(status.level),
                    'message': status.message,
                    **{kv.key: kv.value for kv in status.values},
                }
    report = {
        'frames_published': len(sent),
        'poses_received': len(poses),
        'keypoint_frames_received': len(clouds & set(sent)),
        'dropped_frames': len(set(sent) - clouds),
    }
    # Latency: the first pose planned from each image (its source stamp) after the image was
    # published.
    latency = {}
    for src, arrival in zip(sources, arrivals):
        k = int(np.searchsorted(sent_stamps, src))
        for j in (k - 1, k):
            if 0 <= j < len(sent_stamps) and abs(int(sent_stamps[j]) - src) <= 2_000_000:
                s = int(sent_stamps[j])
                latency.setdefault(s, arrival - sent[s])
    lat = list(latency.values())
    report['frames_reaching_a_pose'] = len(latency)
    report['latency_ms'] = {**timing(lat), 'max_ms': float(1e3 * max(lat))} if lat else {}
    if len(arrivals) > 1:
        span = [a for a in arrivals if min(sent.values()) <= a <= max(sent.values())]
        report['output_rate_hz'] = (
            float((len(span) - 1) / max(span[-1] - span[0], 1e-9)) if len(span) > 1 else 0.0
        )
        st = np.array(stamps, np.int64)
        report['control_interval_ms'] = {
            'median': float(np.median(np.diff(st)) * 1e-6),
            'p95': float(np.percentile(np.diff(st), 95) * 1e-6),
        }
    if session is not None and poses:
        fac = np.asarray(session.facilitator, np.float64)[..., :2]
        gt = np.asarray(session.stamps_ns, np.int64)
        half = int(0.5e9 / session.fps)
        idx = np.clip(np.searchsorted(gt, stamps), 1, len(gt) - 1)
        idx = np.where(np.abs(gt[idx - 1] - stamps) < np.abs(gt[idx] - stamps), idx - 1, idx)
        ok = np.abs(gt[idx] - np.array(stamps)) <= half
        if ok.any():
            pred = np.stack(poses)[ok]
            truth = fac[idx[ok]]
            report['mpjpe'] = float(joint_distance(pred, truth).mean())
            report['mpjpe_hold_first_true_pose'] = float(
                joint_distance(fac[idx[ok][0]][None], truth).mean()
            )
            report['poses_scored'] = int(ok.sum())
        from social_pose_diffusion.evaluation.social import has_social_labels, judge_published

        if has_social_labels(session):
            report['social'] = judge_published(
                session, np.array(stamps, np.int64), np.stack(poses)
            )
    if last_diag:
        report['diagnostics'] = last_diag
    return report


def write_outputs(path: str | Path, received: list, session_bag: str | Path | None = None) -> Path:
    """The recorded outputs (log time = simulated receive time) and the bag's ground truth.

    Both are written as mcap, staged like every session bag: an interrupted write leaves
    nothing that looks complete.
    """
    path = Path(path)
    if path.exists():
        import shutil

        shutil.rmtree(path)
    with SessionWriter(path) as bag:
        for _, sim_ns, topic, raw in received:
            bag.write_cdr(topic, OUTPUT_TYPES[topic], sim_ns, raw)
        if session_bag is not None:
            for _, t, msg in read_messages(session_bag, [FACILITATOR_TOPIC]):
                bag.write(FACILITATOR_TOPIC, CLOUD, t, msg)
    return path


def recorded_poses(out_bag: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(stamps_ns, (N, J, 2) poses)`` of the generated facilitator in an output bag."""
    stamps, poses = [], []
    for _, _, msg in read_messages(out_bag, [POSE_TOPIC]):
        frame = cloud_to_frame(msg)
        if len(frame):
            stamps.append(stamp_ns(msg))
            poses.append(frame.keypoints[0, :, :2])
    return np.array(stamps, np.int64), (np.stack(poses) if poses else np.zeros((0, NUM_JOINTS, 2)))


def recorded_groups(out_bag: str | Path) -> dict[int, np.ndarray]:
    """``{stamp_ns: (N, J, 3) keypoints}`` the graph perceived, from an output bag."""
    return {
        stamp_ns(msg): cloud_to_frame(msg).keypoints
        for _, _, msg in read_messages(out_bag, [GROUP_TOPIC])
    }


def nearest(stamps: np.ndarray, stamp: int, tolerance_ns: int) -> int | None:
    """Index of the stamp nearest ``stamp`` within ``tolerance_ns``, or None."""
    if not len(stamps):
        return None
    k = int(np.clip(np.searchsorted(stamps, stamp), 1, len(stamps) - 1)) if len(stamps) > 1 else 0
    if k > 0 and abs(stamps[k - 1] - stamp) < abs(stamps[k] - stamp):
        k -= 1
    return k if abs(int(stamps[k]) - stamp) <= tolerance_ns else None
