"""`social-pose import`: real-like tracks (another joint order, gaps, swaps, points off the image)
round-trip."""

import csv
import json

import numpy as np
import pytest
from realistic_tracks import FACILITATOR_TRACK, HEIGHT, VFOV, WIDTH, make

from social_pose_diffusion.cli.main import main
from social_pose_diffusion.core.skeleton import JOINT
from social_pose_diffusion.sources.bags import read_session, topic_counts
from social_pose_diffusion.sources.importers import Projection


@pytest.fixture(scope='module')
def tracks():
    return make(seconds=12.0, seed=3)


def _import(tmp_path, source, *extra):
    out = tmp_path / 'session'
    code = main(
        [
            'import',
            str(source),
            '--out',
            str(out),
            '--projection',
            'cylindrical',
            '--vfov',
            str(VFOV),
            '--fps',
            '15',
            *extra,
        ]
    )
    return code, out


def test_coco_round_trip_against_the_simulator(tmp_path, tracks, capsys):
    coco, truth, facts = tracks
    source = tmp_path / 'tracks.json'
    source.write_text(json.dumps(coco))
    code, out = _import(tmp_path, source, '--facilitator-id', str(FACILITATOR_TRACK))
    assert code == 0
    report = json.loads(capsys.readouterr().out.splitlines()[0])
    assert report['dropped']['outside_image'] == facts['outside'] > 0
    assert report['facilitator_gaps'] == facts['facilitator_gaps']
    assert set(report['source_joints_not_used']) == {'neck', 'left_knee', 'right_knee'}
    assert set(report['missing_joints']) == {'left_ear', 'right_ear'}
    assert '/session/info' in topic_counts(out)
    session = read_session(out)
    assert session.info['fps'] == pytest.approx(15.0) and session.fps == pytest.approx(15.0)
    assert len(session) == facts['frames'] - facts['facilitator_gaps']
    assert len(session.segments()) > 1  # the gaps split it
    rows = facts['kept'][~facts['gaps']]
    true = truth.facilitator[rows]
    fac = session.facilitator
    seen = fac[..., 2] > 0
    assert not seen[:, [JOINT['left_ear'], JOINT['right_ear']]].any()
    err = np.abs(fac[..., :2] - true[..., :2])[seen]
    assert np.median(err) < 2e-3  # about a pixel of noise on a 2400 x 600 panorama
    # the participants arrive under their track ids, never as the facilitator
    assert FACILITATOR_TRACK not in session.participant_ids.tolist()


def test_table_import_matches_the_coco_import(tmp_path, tracks):
    coco, _, _ = tracks
    names = coco['categories'][0]['keypoints']
    with open(tmp_path / 'tracks.csv', 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['stamp', 'track_id', 'joint', 'x', 'y', 'confidence'])
        for ann in coco['annotations']:
            kp = np.reshape(ann['keypoints'], (-1, 3))
            for name, (x, y, c) in zip(names, kp):
                w.writerow([(ann['image_id'] - 1000) / 15.0, ann['track_id'], name, x, y, c])
    (tmp_path / 'a').mkdir()
    (tmp_path / 'tracks.json').write_text(json.dumps(coco))
    assert _import(tmp_path / 'a', tmp_path / 'tracks.json', '--facilitator-id', '7')[0] == 0
    out = tmp_path / 'b'
    assert (
        main(
            [
                'import',
                str(tmp_path / 'tracks.csv'),
                '--out',
                str(out),
                '--projection',
                'cylindrical',
                '--vfov',
                str(VFOV),
                '--width',
                str(WIDTH),
                '--height',
                str(HEIGHT),
                '--facilitator-seat',
                f'{coco_seat(coco):.4f}',
            ]
        )
        == 0
    )
    a, b = read_session(tmp_path / 'a' / 'session'), read_session(out)
    assert b.fps == pytest.approx(15.0, rel=1e-3)
    assert len(a) == len(b)
    np.testing.assert_allclose(a.facilitator, b.facilitator, atol=1e-5)


def coco_seat(coco):
    """The facilitator's mean u in the first frame (for --facilitator-seat)."""
    ann = next(a for a in coco['annotations'] if a['track_id'] == FACILITATOR_TRACK)
    return float(np.mean(np.reshape(ann['keypoints'], (-1, 3))[1:10, 0]) / WIDTH)


def test_clear_errors_and_nothing_half_written(tmp_path, tracks, capsys):
    coco, _, _ = tracks
    source = tmp_path / 'tracks.json'
    source.write_text(json.dumps(coco))
    out = tmp_path / 'x'
    assert (
        main(
            [
                'import',
                str(source),
                '--out',
                str(out),
                '--fps',
                '15',
                '--projection',
                'cylindrical',
                '--facilitator-id',
                '7',
            ]
        )
        == 2
    )
    assert '--vfov' in capsys.readouterr().err
    code, out = _import(tmp_path, source, '--facilitator-id', '99')
    assert code == 2 and 'found in no frame' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [source]  # no bag, no temp directory
    broken = dict(coco, categories=[{'keypoints': ['nose', 'left_eye']}])
    source.write_text(json.dumps(broken))
    code, _ = _import(tmp_path, source, '--facilitator-id', '7')
    assert code == 2 and 'keypoint values' in capsys.readouterr().err


def test_cylindrical_projection_is_the_inverse_of_the_panorama():
    from realistic_tracks import uv_to_pixels

    uv = np.array([[0.1, 0.3], [0.5, 0.5], [0.9, 0.62]])
    x, y = uv_to_pixels(uv)
    u, v, inside = Projection('cylindrical', WIDTH, HEIGHT, VFOV).to_uv(x, y)
    np.testing.assert_allclose(np.stack([u, v], -1), uv, atol=1e-9)
    assert inside.all()
    assert not Projection('equirect', 100, 50).to_uv([10], [-1])[2][0]
