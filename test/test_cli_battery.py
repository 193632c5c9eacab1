"""A regression battery of bad command lines: each ends as one error line naming argument or file.

Every case runs the real `social-pose` entry point; the bags are real rosbag2
files, truncated or corrupted on disk. Failed runs must leave nothing that
looks finished.
"""

import json
import random
import re
import shutil
import subprocess
import sys

import pytest

from social_pose_diffusion.cli.main import main
from social_pose_diffusion.sources.sim import simulate, write_session_bag


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """Good and damaged inputs shared by the cases: ``{name: path}``."""
    root = tmp_path_factory.mktemp('battery')
    good = root / 'good'
    write_session_bag(simulate('teacher', 3, 2.0, 30.0, 2), good, 128, 64, progress=False)
    mcap = next(good.glob('*.mcap'))
    data = mcap.read_bytes()
    damaged = {'truncated': data[: len(data) // 2], 'empty': b''}
    rng = random.Random(1)
    chunk = bytearray(data)
    chunk[len(data) // 4 : len(data) // 2] = bytes(
        rng.randrange(256) for _ in range(len(data) // 4)
    )
    damaged['corrupt'] = bytes(chunk)
    out = {'good': good, 'file': root / 'plain.txt', 'root': root, 'old_run': root / 'old_run'}
    out['old_run'].mkdir()
    (out['old_run'] / 'state.json').write_text('{"step": 500}')
    out['file'].write_text('not a directory')
    for name, content in damaged.items():
        shutil.copytree(good, root / name)
        (root / name / mcap.name).write_bytes(content)
        out[name] = root / name
    out['bomb'] = root / 'bomb.png'  # a few kB that would decode to 20000 x 10000 pixels
    import cv2
    import numpy as np

    out['bomb'].write_bytes(cv2.imencode('.png', np.zeros((10000, 20000), np.uint8))[1].tobytes())
    out['tall'] = root / 'tall.png'  # decodes, but is no equirectangular frame
    out['tall'].write_bytes(cv2.imencode('.png', np.zeros((200, 100, 3), np.uint8))[1].tobytes())
    model = root / 'model'
    model.mkdir()
    shutil.copy('models/default.safetensors', model / 'model.safetensors')
    config = json.loads(open('models/default.json').read())
    (model / 'model.json').write_text(json.dumps({**config, 'max_speed': [float('nan')] * 13}))
    out['nan_model'] = model
    return out


def run(argv, capsys):
    """(exit status, stderr) of ``social-pose ARGV`` in this process."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse
        code = exc.code
    return code, capsys.readouterr().err


# (command line with {placeholders} from `files` and {tmp}, text the error must contain)
CASES = [
    ('simulate --seconds 1e9 --out {tmp}/bag', '--seconds 1e+09 at 30 fps is 30000000000 frames'),
    ('simulate --seconds inf --out {tmp}/bag', 'argument --seconds: must be finite'),
    ('simulate --seconds nan --out {tmp}/bag', 'argument --seconds: must be finite'),
    ('simulate --seconds 0.01 --out {tmp}/bag', '--seconds 0.01 at 30 fps is 0 frames'),
    ('simulate --fps 1e-4 --out {tmp}/bag', 'at 0.0001 fps is 0 frames'),
    ('simulate --fps 0 --out {tmp}/bag', 'argument --fps: must be positive'),
    ('simulate --seed -1 --out {tmp}/bag', 'argument --seed: must be >= 0'),
    ('simulate --width 0 --out {tmp}/bag', 'argument --width: must be 64 to 7680'),
    ('simulate --out {file}/bag', 'argument --out: {file}/bag: {file} is a file'),
    ('simulate --out {good}', '{good} already exists'),
    ('train --steps 5 --out {tmp}/run', '--steps was renamed: use --train-steps'),
    ('train --train-steps 0 --out {tmp}/run', 'argument --train-steps: must be 1 to'),
    ('train --batch 0 --out {tmp}/run', 'argument --batch: must be 1 to'),
    ('train --seed -1 --out {tmp}/run', 'argument --seed: must be >= 0'),
    ('train --lr nan --out {tmp}/run', 'argument --lr: must be finite'),
    ('train --horizon 0 --out {tmp}/run', 'argument --horizon: must be 1 to'),
    ('train --d-model 4 --out {tmp}/run', 'argument --d-model: must be 8 to 1024'),
    ('train --layers 0 --out {tmp}/run', 'argument --layers: must be 1 to 12'),
    (
        'train --d-model 30 --bags {good} --out {tmp}/run',
        'heads 4 must divide d_model 30',
    ),
    (
        'train --style-units --bags {good} --out {tmp}/run',
        'style_units needs styles to measure the units of',
    ),
    (
        'train --rest-s 10 --simulate teacher --seconds 3 --out {tmp}/run',
        "a pull time constant needs the rest prior, not 'none'",
    ),
    ('train --seconds 0.01 --simulate teacher --out {tmp}/run', '0 frames'),
    ('train --device tpu --out {tmp}/run', 'argument --device: must be auto, cpu, cuda'),
    ('train --bags {truncated} --out {tmp}/run', '{truncated}: not a readable session bag'),
    ('train --bags {empty} --out {tmp}/run', '{empty}: not a readable session bag'),
    ('train --bags {corrupt} --out {tmp}/run', '{corrupt}: not a readable session bag'),
    ('train --bags {tmp}/missing --out {tmp}/run', '{tmp}/missing: not a readable session bag'),
    ('train --bags {good} --out {file}', '--out {file} is a file'),
    (
        'train --bags {good} --out {old_run} --resume',
        '{old_run}/state.json is a checkpoint of an older layout',
    ),
    ('train --bags {good} --out {file}/run', '{file} is a file'),
    (
        'train --bags {good} --group-topic /humans/nobody --out {tmp}/run',
        '{good} has no group messages on /humans/nobody (keypoint topics: ',
    ),
    (
        'train --simulate teacher --seconds 3 --horizon 200 --out {tmp}/run',
        'a 200-frame horizon a session needs at least 256 frames (8.5 s at 30 fps)',
    ),
    ('evaluate --steps 3', '--steps was renamed: use --sampler-steps'),
    ('evaluate --samples 4', '--samples was renamed: use --k'),
    ('evaluate --agent-samples 4', '--agent-samples was renamed: use --plans'),
    ('evaluate --k 0', 'argument --k: must be 1 to'),
    ('evaluate --plans 0', 'argument --plans: must be 1 to'),
    ('evaluate --sampler-steps -5', 'argument --sampler-steps: must be 1 to'),
    ('evaluate --sampler gan', 'argument --sampler: invalid choice'),
    ('evaluate --seconds inf --simulate teacher', 'argument --seconds: must be finite'),
    (
        'evaluate --model {nan_model} --bags {good}',
        '{nan_model}/model.json: not a valid policy config: max_speed must be finite',
    ),
    (
        'evaluate --model {tmp}/nothing --bags {good}',
        'model file {tmp}/nothing.safetensors not found',
    ),
    ('evaluate --sampler ddim --bags {good}', 'a flow policy samples with euler'),
    ('evaluate --bags {truncated}', '{truncated}: not a readable session bag'),
    (
        'evaluate --bags {good} --report {tmp}/out/e.json',
        '{good}: too short to evaluate: its held-out last 20 % must hold more than a 16-frame',
    ),
    (
        'evaluate --bags {good} --report {file}/r.json',
        'argument --report: {file}/r.json: {file} is a file',
    ),
    (
        'extract --image {tmp}/a.jpg --out {tmp}/a.json --overlay {tmp}/x.xyz',
        'cannot write images of type .xyz',
    ),
    (
        'extract --image {file} --out {tmp}/a.json',
        '{file} is not a readable image: compressed image of 15 bytes could not be decoded: '
        'not an image format',
    ),
    ('extract --image {bomb} --out {tmp}/a.json', 'exceeds limit of'),
    (
        'extract --image {tall} --out {tmp}/out/a.json',
        '{tall}: image 100x200 is not equirectangular: width must be twice the height',
    ),
    ('extract --bag {truncated} --out {tmp}/out', '{truncated}: not a readable session bag'),
    ('extract --bag {good} --out {file}/out', '{file} is a file'),
    ('extract --bag {good} --out {tmp}/out --max-people 0', 'argument --max-people: must be 1 to'),
    ('demo --model {tmp}/missing --out {tmp}/out', 'model file {tmp}/missing.safetensors'),
    (
        'evaluate --replay {good} --model {tmp}/missing --report {tmp}/out/r.json',
        'model file {tmp}/missing.safetensors',
    ),
    ('demo --model {nan_model} --out {tmp}/out', 'max_speed must be finite'),
    ('demo --style dancer --out {tmp}/out', "argument --style: invalid choice: 'dancer'"),
    ('benchmark policy --threads -1 --out {tmp}/out/b.json', 'argument --threads: must be 1 to'),
    ('benchmark policy --frames 0 --out {tmp}/out/b.json', 'argument --frames: must be 1 to'),
    (
        'benchmark policy --model {tmp}/missing --out {tmp}/out/b.json',
        'model file {tmp}/missing.safetensors',
    ),
    ('benchmark soak --frames -5 --out {tmp}/out/b.json', 'argument --frames: must be 1 to'),
    ('benchmark pipeline --fps 0 --out {tmp}/out/b.json', 'argument --fps: must be 1.0 to 240.0'),
    (
        'benchmark perception --people 4,x --out {tmp}/out/b.json',
        "argument --people: not an integer: 'x' in '4,x'",
    ),
]


def _fill(text, files, tmp):
    return text.format(tmp=tmp, **{k: str(v) for k, v in files.items()})


@pytest.mark.parametrize(
    'line,message', CASES, ids=[c[0].split(' {')[0] + f'-{i}' for i, c in enumerate(CASES)]
)
def test_bad_command_lines_end_in_one_error_line(files, tmp_path, capsys, line, message):
    code, err = run(_fill(line, files, tmp_path).split(), capsys)
    command = line.split()[0]
    last = err.strip().splitlines()[-1]
    assert code == 2 and re.match(rf'social-pose {command}( \w+)?: error: ', last)
    assert _fill(message, files, tmp_path) in last and 'Traceback' not in err
    assert not (tmp_path / 'bag').exists()
    assert not (tmp_path / 'run' / 'model.safetensors').exists()
    assert not (tmp_path / 'out').exists() and not list(tmp_path.glob('.*'))


@pytest.mark.slow  # starts social-pose in a subprocess
def test_debug_shows_the_traceback(files, tmp_path):
    args = [sys.executable, '-m', 'social_pose_diffusion.cli']
    bad = ['train', '--bags', str(files['truncated']), '--out', str(tmp_path / 'run')]
    quiet = subprocess.run(args + bad, capture_output=True, text=True, timeout=300)
    loud = subprocess.run(args + ['--debug'] + bad, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == loud.returncode == 2
    assert 'Traceback' not in quiet.stderr and quiet.stderr.count('\n') == 1
    assert 'Traceback' in loud.stderr and 'AnyReaderError' in loud.stderr
    assert loud.stderr.strip().splitlines()[-1] == quiet.stderr.strip()


def test_a_failed_simulation_leaves_no_bag(tmp_path, capsys, monkeypatch):
    from social_pose_diffusion.sources.sim import render

    calls = []

    def broken(self, t):
        calls.append(t)
        if len(calls) > 5:
            raise OSError(28, 'No space left on device')
        return real(self, t)

    real = render.Renderer.frame
    monkeypatch.setattr(render.Renderer, 'frame', broken)
    code, err = run(
        ['simulate', '--seconds', '1', '--width', '128', '--out', tmp_path / 'bag'], capsys
    )
    assert code == 2 and 'No space left on device' in err
    assert list(tmp_path.iterdir()) == []  # neither the bag nor its staging directory


def test_extract_from_a_corrupt_chunk_leaves_no_bag(files, tmp_path, capsys):
    code, err = run(['extract', '--bag', files['corrupt'], '--out', tmp_path / 'out'], capsys)
    assert code == 2 and f'{files["corrupt"]}: not a readable session bag' in err
    assert list(tmp_path.iterdir()) == []


def test_train_then_resume_without_a_checkpoint_says_it_starts_fresh(files, tmp_path, capsys):
    code, err = run(
        [
            'train',
            '--bags',
            files['good'],
            '--out',
            tmp_path / 'run',
            '--train-steps',
            '2',
            '--batch',
            '4',
            '--threads',
            '1',
            '--resume',
        ],
        capsys,
    )
    assert code == 0 and f'no checkpoint in {tmp_path / "run"}' in err and 'starting fresh' in err
    assert (tmp_path / 'run' / 'model.safetensors').is_file()


def test_evaluate_outside_the_source_tree_finds_the_packaged_model(tmp_path, capsys, monkeypatch):
    write_session_bag(
        simulate('teacher', 3, 4.0, 30.0, 2), tmp_path / 'bag', 128, 64, progress=False
    )
    monkeypatch.chdir(tmp_path)  # no models/ here: a user's own working directory
    code, err = run(
        ['evaluate', '--bags', 'bag', '--quick', '--starts', '1', '--report', 'e.json'], capsys
    )
    assert code == 0, err
    assert json.loads((tmp_path / 'e.json').read_text())['model']['encoder'] == 'vector'
    assert 'Warning' not in err  # nothing but the rollouts that do not fit the session
