"""The synthetic group-discussion world.

Turn-taking, skeletons, a rendered 360 camera and session bags.
"""

from social_pose_diffusion.sources.sim.bag import write_session_bag
from social_pose_diffusion.sources.sim.render import Renderer
from social_pose_diffusion.sources.sim.styles import STYLES
from social_pose_diffusion.sources.sim.world import simulate

__all__ = ['STYLES', 'Renderer', 'simulate', 'write_session_bag']
