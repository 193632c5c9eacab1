"""The package installs the way users install it, and finds its default model in each layout.

Layouts: colcon (plain, as a robot builds, and ``--symlink-install``), a pip
wheel into a prefix, a source checkout (what an editable install maps to). Each resolves
the packaged files from
a process that sees only that install (another working directory, no source
tree on its path), with and without the ament index.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = 'social_pose_diffusion'
EXECUTABLES = ('social-pose', 'keypoints_node', 'policy_node', 'retarget_node', 'visualizer_node')
# Run with -I -S: the install's site dir (its .pth files too) and, for the ament index case,
# the directory of ament_index_python without its .pth files (the venv may hold an editable
# install of the repository itself).
RESOLVE = (
    'import site, sys\n'
    'site.addsitedir(sys.argv[1])\n'
    'sys.path.extend(sys.argv[2:])\n'
    'from social_pose_diffusion.core import resources\n'
    'print(resources.__file__)\n'
    'print(resources.default_model())\n'
    'print(resources.config_path("facilitator.yaml"))\n'
)


def colcon_build(workspace, *extra):
    colcon = Path(sys.executable).with_name('colcon')
    build = subprocess.run(
        [
            str(colcon),
            '--log-base',
            'log',
            'build',
            '--base-paths',
            str(REPO),
            '--packages-select',
            PACKAGE,
            '--build-base',
            'build',
            '--install-base',
            'install',
            *extra,
        ],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    return workspace / 'install' / PACKAGE


def resolve(cwd, site_dir, ament_prefix=None):
    """``(module file, default model, facilitator.yaml)`` as seen with only ``site_dir``."""
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'AMENT_PREFIX_PATH')}
    cmd = [sys.executable, '-I', '-S', '-c', RESOLVE, str(site_dir)]
    if ament_prefix:
        import ament_index_python

        env['AMENT_PREFIX_PATH'] = str(ament_prefix)
        cmd.append(str(Path(ament_index_python.__file__).parents[1]))
    run = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return [Path(line) for line in run.stdout.splitlines()[-3:]]


def source_copy(tmp_path):
    """The tracked files in a fresh folder: building writes build/ and egg-info into its tree."""
    files = (
        subprocess.run(['git', 'ls-files', '-z'], cwd=REPO, capture_output=True, check=True)
        .stdout.decode()
        .split('\0')
    )
    copy = tmp_path / 'src'
    for name in filter(None, files):
        if (REPO / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name)
    return copy


def wheel_install(tmp_path):
    """Build the wheel and install it into a prefix with the pip of a fresh venv.

    Never the test interpreter's own pip: even with ``--prefix`` it uninstalls the
    package from the environment running the tests (an editable install shared by
    everyone on a development machine).
    """
    copy = source_copy(tmp_path)
    built = subprocess.run(
        [sys.executable, 'setup.py', '-q', 'bdist_wheel', '-d', str(tmp_path)],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True, timeout=300)
    prefix = tmp_path / 'prefix'
    run = subprocess.run(
        [
            str(venv / 'bin' / 'python'),
            '-m',
            'pip',
            'install',
            '-q',
            '--no-deps',
            '--no-index',
            '--prefix',
            str(prefix),
            *map(str, tmp_path.glob('*.whl')),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    shutil.rmtree(copy)  # nothing may come from the source tree
    return prefix, next((prefix / 'lib').glob('python3*/site-packages'))


def assert_installed_here(found, root):
    module, model, config = found
    assert module.is_relative_to(root), f'imported {module}, not the install under {root}'
    assert model.is_relative_to(root), model
    assert model.with_suffix('.safetensors').is_file() and model.with_suffix('.json').is_file()
    assert config.is_file() and config.is_relative_to(root), config


@pytest.mark.slow
def test_colcon_build_installs_executables_launch_config_models_and_marker(tmp_path):
    prefix = colcon_build(tmp_path)
    share = prefix / 'share' / PACKAGE
    assert (prefix / 'share/ament_index/resource_index/packages' / PACKAGE).is_file()
    assert (share / 'package.xml').is_file()
    for executable in EXECUTABLES:
        assert os.access(prefix / 'lib' / PACKAGE / executable, os.X_OK), executable
    for folder in ('launch', 'config', 'models'):
        shipped = {p.name for p in (REPO / folder).iterdir() if p.is_file()}
        assert shipped and shipped <= {p.name for p in (share / folder).iterdir()}, folder
    site_dir = next((prefix / 'lib').glob('python3*/site-packages'))
    env = dict(os.environ, PYTHONPATH=str(site_dir))
    ran = subprocess.run(
        [str(prefix / 'lib' / PACKAGE / 'social-pose'), '--help'],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0 and 'simulate' in ran.stdout, ran.stderr
    # The default model, through the ament index (a sourced workspace) and without it.
    for ament in (prefix, None):
        assert_installed_here(resolve(tmp_path, site_dir, ament), prefix)


@pytest.mark.slow
def test_colcon_symlink_install_finds_the_default_model(tmp_path):
    prefix = colcon_build(tmp_path, '--symlink-install')
    # install/setup.bash puts the build folder (a symlink to the sources) on PYTHONPATH.
    module, model, config = resolve(tmp_path, tmp_path / 'build' / PACKAGE, prefix)
    assert module.is_relative_to(tmp_path / 'build'), module
    assert model.is_relative_to(prefix) and model.with_suffix('.safetensors').is_file(), model
    assert config.is_relative_to(prefix) and config.is_file(), config


@pytest.mark.slow
def test_pip_wheel_into_a_prefix_finds_the_default_model_without_the_source(tmp_path):
    prefix, site_dir = wheel_install(tmp_path)
    assert (prefix / 'share' / PACKAGE / 'models' / 'default.safetensors').is_file()
    assert_installed_here(resolve(tmp_path, site_dir), prefix)


def test_source_checkout_finds_the_default_model_in_its_tree(tmp_path):
    """What an editable install maps the package to (``pip install -e``, ``make``'s venv)."""
    copy = source_copy(tmp_path)
    assert_installed_here(resolve(tmp_path, copy), copy)
