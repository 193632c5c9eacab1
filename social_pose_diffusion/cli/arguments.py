"""Argument types and checks shared by the subcommands: bounds at parse time, one message style.

argparse reports a failing type as ``social-pose CMD: error: argument --NAME:
invalid ... value`` (exit 2), naming the argument; checks that need several
arguments raise :class:`UsageError`, which the top-level handler prints the
same way.
"""

import argparse
import math
from pathlib import Path

MAX_FRAMES = 10 * 3600 * 30  # ten hours of a 30 fps camera: the longest session the tools accept
MAX_FPS = 240.0


class UsageError(ValueError):
    """Arguments that are each valid but do not fit together."""


def _number(text, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'not {"an integer" if kind is int else "a number"}: {text!r}'
        ) from None


def integer(low=None, high=None):
    """An int type in [low, high] (either bound optional)."""

    def parse(text):
        value = _number(text, int)
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f'must be {_bounds(low, high)}, got {text}')
        return value

    return parse


def number(low=None, high=None, positive=False):
    """A finite float type in [low, high]; ``positive`` excludes 0 and below."""

    def parse(text):
        value = _number(text, float)
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f'must be finite, got {text}')
        if positive and value <= 0:
            raise argparse.ArgumentTypeError(f'must be positive, got {text}')
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f'must be {_bounds(low, high)}, got {text}')
        return value

    return parse


def _bounds(low, high):
    if low is not None and high is not None:
        return f'{low} to {high}'
    return f'>= {low}' if low is not None else f'<= {high}'


def integers(low=None, high=None):
    """A comma-separated list of ints, each in [low, high] (e.g. ``4,8,13``)."""
    one = integer(low, high)

    def parse(text):
        items = [item.strip() for item in text.split(',')]
        try:
            return [one(item) for item in items]
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f'{exc} in {text!r}') from None

    return parse


def seat(text):
    """An azimuth u in [0, 1) (0.5 = the camera's forward axis)."""
    value = _number(text, float)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f'must be an azimuth u in [0, 1), got {text}')
    return value


def seat_tolerance(text):
    """How far from a seat a person may sit, in u (0.5 = 180 deg)."""
    value = _number(text, float)
    if not 0.0 < value <= 0.5:
        raise argparse.ArgumentTypeError(
            f'must be in (0, 0.5] (u units, 0.5 = 180 deg), got {text}'
        )
    return value


def output_path(text):
    """A path to create: refused when one of its parents is a file (nothing could be written)."""
    path = Path(text)
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f'{text}: {parent} is a file, not a directory')
            break
    return path


def session_length(seconds, fps, what='--seconds'):
    """Frames of a ``seconds`` x ``fps`` session; :class:`UsageError` unless in 1..MAX_FRAMES."""
    frames = int(round(seconds * fps))
    if frames < 1:
        raise UsageError(
            f'{what} {seconds:g} at {fps:g} fps is {frames} frames; a session needs at least one'
        )
    if frames > MAX_FRAMES:
        raise UsageError(
            f'{what} {seconds:g} at {fps:g} fps is {frames} frames, more than the '
            f'{MAX_FRAMES} (10 h at 30 fps) a session may have'
        )
    return frames


def device(text):
    """auto, cpu, cuda or cuda:N."""
    if text in ('auto', 'cpu', 'cuda') or (text.startswith('cuda:') and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f'must be auto, cpu, cuda or cuda:N, got {text!r}')


class _Renamed(argparse.Action):
    """An old option spelling: parsing it fails with the new one's name."""

    def __init__(self, option_strings, dest, new, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, nargs='?', help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f'{option_string} was renamed: use {self.new}')


def renamed(parser, old, new):
    """Register ``old`` as a removed spelling of ``new`` (e.g. --steps -> --train-steps)."""
    parser.add_argument(old, action=_Renamed, new=new, dest=f'_renamed_{old.strip("-")}')
