"""Speed measurements behind `social-pose benchmark`.

One module per target with ``add_arguments(parser)`` and ``run(args) -> dict``.
"""

import os
import platform

TARGETS = ('policy', 'perception', 'pipeline', 'soak')


def machine() -> dict:
    """What the numbers were measured on."""
    import torch

    return {
        'cpu_count': os.cpu_count(),
        'platform': platform.platform(),
        'python': platform.python_version(),
        'torch': torch.__version__,
        'torch_threads': torch.get_num_threads(),
        'cuda': torch.cuda.is_available(),
    }
