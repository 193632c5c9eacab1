"""The recorded outputs of a replay are written as one staged bag: complete, or not at all."""

import numpy as np
import pytest

from social_pose_diffusion.evaluation.live import recorded_poses, write_outputs
from social_pose_diffusion.msgs.keypoint_cloud import facilitator_cloud
from social_pose_diffusion.msgs.topics import POSE_TOPIC
from social_pose_diffusion.sources.bags import CLOUD, ROSBAGS, TYPESTORE
from social_pose_diffusion.sources.sim import simulate


def test_outputs_are_written_whole_or_not_at_all(tmp_path):
    pose = simulate('teacher', 3, 1.0, 30.0, 1).facilitator[0, :, :2]
    received = []
    for k in range(3):
        msg = facilitator_cloud(pose, np.zeros(13), 0.1, ROSBAGS.header(k * 33_000_000), ROSBAGS)
        received.append((0.0, k * 33_000_000, POSE_TOPIC, TYPESTORE.serialize_cdr(msg, CLOUD)))
    out = write_outputs(tmp_path / 'outputs', received)
    stamps, poses = recorded_poses(out)
    assert len(stamps) == 3 and np.allclose(poses[0], pose, atol=1e-6)
    broken = received + [(0.0, 10**8, '/not/an/output', b'')]
    with pytest.raises(KeyError):
        write_outputs(tmp_path / 'broken', broken)
    assert not (tmp_path / 'broken').exists()
    assert [p.name for p in tmp_path.iterdir()] == ['outputs']  # no staging directory left
