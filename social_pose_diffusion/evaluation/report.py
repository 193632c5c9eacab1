"""Writing evaluation figures: PNGs rendered in memory and written atomically."""

import io

from social_pose_diffusion.core.atomic import write_bytes


def save_figure(fig, path: str) -> str:
    """Write a matplotlib figure as PNG at ``path`` (atomically), close it and return the path."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=90, bbox_inches='tight')
    plt.close(fig)
    write_bytes(path, buf.getvalue())
    return str(path)
