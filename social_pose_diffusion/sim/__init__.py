"""The synthetic group-discussion world: turn-taking, skeletons, a rendered 360 camera and session bags."""
from .bag import write_session_bag
from .render import Renderer
from .styles import STYLES
from .world import simulate

__all__ = ['STYLES', 'Renderer', 'simulate', 'write_session_bag']
