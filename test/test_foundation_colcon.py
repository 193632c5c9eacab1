"""The package builds the way a robot builds it: colcon into a fresh install tree."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = 'social_pose_diffusion'
EXECUTABLES = ('social-pose', 'keypoints_node', 'policy_node', 'retarget_node', 'visualizer_node')


def test_colcon_build_installs_executables_launch_config_models_and_marker(tmp_path):
    colcon = Path(sys.executable).with_name('colcon')
    build = subprocess.run([str(colcon), '--log-base', 'log', 'build', '--base-paths', str(REPO),
                            '--packages-select', PACKAGE, '--build-base', 'build', '--install-base', 'install'],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    prefix = tmp_path / 'install' / PACKAGE
    share = prefix / 'share' / PACKAGE
    assert (prefix / 'share/ament_index/resource_index/packages' / PACKAGE).is_file()
    assert (share / 'package.xml').is_file()
    for executable in EXECUTABLES:
        assert os.access(prefix / 'lib' / PACKAGE / executable, os.X_OK), executable
    for folder in ('launch', 'config', 'models'):
        shipped = {p.name for p in (REPO / folder).iterdir() if p.is_file()}
        assert shipped and shipped <= {p.name for p in (share / folder).iterdir()}, folder
    assert list((share / 'models').glob('*.safetensors')), 'the default model is installed'
    assert list((share / 'launch').glob('*.launch.py'))

    site = next((prefix / 'lib').glob('python3*/site-packages'))
    env = dict(os.environ, PYTHONPATH=str(site))
    ran = subprocess.run([str(prefix / 'lib' / PACKAGE / 'social-pose'), '--help'], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0 and 'simulate' in ran.stdout, ran.stderr
