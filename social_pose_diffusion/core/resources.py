"""Files the package installs (config, launch, models), found in every install layout without ROS.

Layouts: a colcon install (plain or ``--symlink-install``; found through the
ament index when it is importable), a pip wheel or a plain colcon install
without the index (``<prefix>/share/social_pose_diffusion`` next to
``<prefix>/lib/pythonX.Y/site-packages``), and an editable install or a
source checkout (the repository root).
"""

from pathlib import Path

PACKAGE = 'social_pose_diffusion'
_HERE = Path(__file__).resolve().parent.parent  # the package directory


def _roots() -> list[Path]:
    roots = []
    try:
        from ament_index_python.packages import get_package_share_directory

        roots.append(Path(get_package_share_directory(PACKAGE)))
    except Exception:  # no ament index, or the package is not in it (pip install, source tree)
        pass
    site = _HERE.parent
    if site.parent.parent.name in ('lib', 'lib64'):  # <prefix>/lib/pythonX.Y/site-packages/<pkg>
        roots.append(site.parents[2] / 'share' / PACKAGE)
    roots.append(_HERE.parent)  # source tree / editable install
    return roots


def share_path(*parts: str) -> Path:
    """The installed file ``share/social_pose_diffusion/<parts>``.

    FileNotFoundError names every place tried.
    """
    tried = []
    for root in _roots():
        candidate = root.joinpath(*parts)
        if candidate.exists():
            return candidate
        tried.append(str(candidate))
    raise FileNotFoundError(
        f'{"/".join(parts)} is not installed with {PACKAGE} (looked in {", ".join(tried)})'
    )


def config_path(name: str) -> Path:
    """A file of the package's ``config/``."""
    return share_path('config', name)


def default_model() -> Path:
    """The packaged default model's stem (``.../models/default``).

    The stem lies next to its .safetensors and .json.
    """
    return share_path('models', 'default.safetensors').with_suffix('')
