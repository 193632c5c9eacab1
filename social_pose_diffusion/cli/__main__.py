"""``python -m social_pose_diffusion.cli``: the `social-pose` command."""

import sys

from social_pose_diffusion.cli.main import main

sys.exit(main())
