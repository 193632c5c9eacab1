"""ament_python package that also installs with pip."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'social_pose_diffusion'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.launch.py')),
        (f'share/{PACKAGE}/config', glob('config/*')),
        (f'share/{PACKAGE}/models', glob('models/*')),
    ],
    package_data={PACKAGE: ['data/*']},
    include_package_data=True,
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='social_pose_diffusion developers',
    maintainer_email='dev@example.com',
    description='Diffusion imitation-learning facilitator poses from a 360 degree camera, ROS 2.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'social-pose = social_pose_diffusion.cli.main:main',
            'keypoints_node = social_pose_diffusion.ros.nodes.keypoints_node:main',
            'policy_node = social_pose_diffusion.ros.nodes.policy_node:main',
            'retarget_node = social_pose_diffusion.ros.nodes.retarget_node:main',
            'visualizer_node = social_pose_diffusion.ros.nodes.visualizer_node:main',
        ],
    },
)
