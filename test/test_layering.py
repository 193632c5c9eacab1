"""The core stays free of ROS.

Every module outside ``ros/`` imports with rclpy and its messages unimportable.
"""

import json
import subprocess
import sys

BLOCKED = (
    'rclpy',
    'sensor_msgs',
    'std_msgs',
    'builtin_interfaces',
    'diagnostic_msgs',
    'geometry_msgs',
    'visualization_msgs',
    'lifecycle_msgs',
    'rosgraph_msgs',
    'rcl_interfaces',
    'cv_bridge',
)

CODE = f"""
import importlib, json, pkgutil, sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {BLOCKED!r}:
            raise ImportError(f'{{name}} is blocked: the core must not need ROS')

sys.meta_path.insert(0, Block())
import social_pose_diffusion as package
checked, failed = [], {{}}
for info in pkgutil.walk_packages(package.__path__, 'social_pose_diffusion.'):
    if info.name.startswith('social_pose_diffusion.ros') or info.name.endswith('__main__'):
        continue
    try:
        importlib.import_module(info.name)
        checked.append(info.name)
    except Exception as exc:
        failed[info.name] = f'{{type(exc).__name__}}: {{exc}}'
print(json.dumps({{'checked': checked, 'failed': failed}}))
"""


def test_every_module_outside_ros_imports_without_ros():
    run = subprocess.run([sys.executable, '-c', CODE], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert not result['failed'], result['failed']
    assert {
        'social_pose_diffusion.msgs.keypoint_cloud',
        'social_pose_diffusion.planning.agent',
        'social_pose_diffusion.sources.bags',
        'social_pose_diffusion.evaluation.live',
    } <= set(result['checked'])


def test_the_block_really_blocks():
    code = CODE.replace('import social_pose_diffusion as package', 'import rclpy  # noqa')
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and 'blocked' in run.stderr
