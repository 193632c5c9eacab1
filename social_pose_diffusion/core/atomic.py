"""Atomic file writes: a temp file in the same directory, then a rename."""
import json
import os
import tempfile
from pathlib import Path


def write_bytes(path, data):
    """Write ``data`` to ``path`` so readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile('wb', dir=path.parent, prefix=f'.{path.name}.', delete=False) as tmp:
        tmp.write(data)
    os.chmod(tmp.name, 0o644)  # temp files are private; results are not
    os.replace(tmp.name, path)


def write_json(path, payload):
    """Write ``payload`` as indented JSON atomically."""
    write_bytes(path, (json.dumps(payload, indent=2) + '\n').encode())
