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


def _write_table(coco, path, broken=0):
    """``coco`` as a CSV table; the first ``broken`` points get x = inf or nan."""
    names = coco['categories'][0]['keypoints']
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['stamp', 'track_id', 'joint', 'x', 'y', 'confidence'])
        row = 0
        for ann in coco['annotations']:
            kp = np.reshape(ann['keypoints'], (-1, 3))
            for name, (x, y, c) in zip(names, kp):
                if row < broken:
                    x = ('inf', 'nan')[row % 2]
                w.writerow([(ann['image_id'] - 1000) / 15.0, ann['track_id'], name, x, y, c])
                row += 1


def test_table_import_matches_the_coco_import(tmp_path, tracks):
    coco, _, _ = tracks
    _write_table(coco, tmp_path / 'tracks.csv')
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


@pytest.mark.filterwarnings('error')  # the user sees only the report, no numpy warning
def test_non_finite_points_are_counted_and_dropped_without_a_warning(tmp_path, tracks, capsys):
    coco, _, _ = tracks
    _write_table(coco, tmp_path / 'tracks.csv', broken=6)
    code, _ = _import(
        tmp_path,
        tmp_path / 'tracks.csv',
        *('--width', str(WIDTH), '--height', str(HEIGHT), '--facilitator-seat'),
        f'{coco_seat(coco):.4f}',
    )
    captured = capsys.readouterr()
    assert code == 0 and captured.err == ''
    ours = sum(name in JOINT for name in coco['categories'][0]['keypoints'][:6])
    assert json.loads(captured.out.splitlines()[0])['dropped']['non_finite'] == ours > 0


def _alphapose(coco, tracked=True):
    """``coco`` as AlphaPose writes it: a list, image names for frames, ``idx`` for the track."""
    frame = {image['id']: image['frame_id'] for image in coco['images']}
    return [
        {
            'image_id': f'frame_{frame[a["image_id"]]:06d}.jpg',
            'category_id': 1,
            'keypoints': a['keypoints'],
            'score': 2.7,  # AlphaPose's person score is not a keypoint confidence
            **({'idx': a['track_id']} if tracked else {}),
        }
        for a in coco['annotations']
    ]


def test_alphapose_and_untracked_detections_import_as_the_coco_tracks(tmp_path, tracks):
    coco, _, facts = tracks
    names = ','.join(coco['categories'][0]['keypoints'])
    size = ['--width', str(WIDTH), '--height', str(HEIGHT), '--joints', names]
    (tmp_path / 'coco').mkdir()
    (tmp_path / 'tracks.json').write_text(json.dumps(coco))
    assert _import(tmp_path / 'coco', tmp_path / 'tracks.json', '--facilitator-id', '7')[0] == 0
    reference = read_session(tmp_path / 'coco' / 'session')
    for name, tracked, who in (
        ('alphapose', True, ['--facilitator-id', '7']),
        ('untracked', False, ['--facilitator-seat', f'{coco_seat(coco):.4f}']),
    ):
        (tmp_path / name).mkdir()
        source = tmp_path / name / 'tracks.json'
        source.write_text(json.dumps(_alphapose(coco, tracked)))
        assert _import(tmp_path / name, source, *size, *who)[0] == 0
        session = read_session(tmp_path / name / 'session')
        assert len(session) == len(reference) == facts['frames'] - facts['facilitator_gaps']
        np.testing.assert_allclose(session.facilitator, reference.facilitator, atol=1e-5)
        if tracked:
            np.testing.assert_allclose(session.participants, reference.participants, atol=1e-5)
            continue
        # The tracker gives each of the 4 participants one id that stays at their seat, also
        # through the 4 s where the source's two track ids swap.
        assert session.info['import']['tracked_on_import']
        assert len(session.participant_ids) == 4
        shoulders = session.participants[:, :, 5:7]
        seen = (shoulders[..., 2] > 0).all(-1)
        for person in range(4):
            u = shoulders[seen[:, person], person, :, 0].mean(-1)
            assert np.ptp(u) < 0.02


def test_coco_layouts_that_extend_the_17_joints_need_no_joint_order(tmp_path):
    from social_pose_diffusion.sources.importers import read_coco

    source = tmp_path / 'a.json'
    for count, layout in ((17, 'right_ankle'), (26, 'halpe26_25'), (133, 'coco_wholebody_132')):
        ann = {'image_id': 'clip/000004.png', 'keypoints': [1.0, 2.0, 0.5] * count}
        source.write_text(json.dumps([ann]))
        detections = read_coco(source)
        assert detections.joints[:13] == tuple(JOINT) and detections.joints[-1] == layout
        assert not detections.tracked and detections.frame.tolist() == [4] * count


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


def _table(path, stamps):
    with open(path, 'w', newline='') as f:
        rows = csv.writer(f)
        rows.writerow(['stamp', 'track', 'joint', 'x', 'y', 'conf'])
        for s in stamps:
            rows.writerows([s, 1, j, 100 + i, 50 + i, 0.9] for i, j in enumerate(JOINT))


@pytest.mark.parametrize(
    'kind,message',
    [
        ('negative_stamp', 'stamp -1 is not a ROS time in seconds'),
        ('nan_stamp', 'stamp nan is not a ROS time in seconds'),
        ('nanosecond_stamps', 'nanoseconds would be 1e9 times too large'),
        (
            'unequal_columns',
            'the columns must be equally long 1-D arrays, not stamp (3,), track (2,)',
        ),
        ('huge_image_id', 'frame number 1000000000000000000000000000000 is beyond 2147483647'),
    ],
)
def test_malformed_times_and_columns_are_one_error_line(tmp_path, capsys, kind, message):
    source = tmp_path / {'unequal_columns': 'in.npz', 'huge_image_id': 'in.json'}.get(
        kind, 'in.csv'
    )
    if kind == 'unequal_columns':
        cols = {k: np.zeros(3) for k in ('stamp', 'x', 'y', 'conf')}
        np.savez(source, track=np.zeros(2), joint=np.array(['nose'] * 3), **cols)
    elif kind == 'huge_image_id':
        ann = [{'image_id': i, 'track_id': 1, 'keypoints': [1, 1, 1] * 17} for i in (2, 10**30)]
        source.write_text(json.dumps(ann))
    else:
        stamps = {'negative_stamp': [-1, 0.1], 'nan_stamp': ['nan', 0.1]}.get(kind)
        _table(source, stamps or [1.7e18, 1.7e18 + 6.7e7])
    args = ['--facilitator-id', '1', '--width', '640', '--height', '320']
    code = main(['import', str(source), '--out', str(tmp_path / 'x'), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err.splitlines()[-1] and 'Traceback' not in err, err
    assert not (tmp_path / 'x').exists()
