"""The `social-pose` command line: one entry point, one module per subcommand.

Every expected failure (bad arguments, a missing, unreadable or corrupt bag,
model or checkpoint, an unwritable path) ends as one line
``social-pose CMD: error: ...`` naming the argument or file, exit status 2;
``--debug`` shows the traceback instead.
"""

import argparse
import sys
import traceback

from social_pose_diffusion.cli import (
    benchmark,
    demo,
    evaluate,
    extract,
    import_tracks,
    simulate,
    train,
)

COMMANDS = (simulate, demo, train, evaluate, extract, import_tracks, benchmark)


def build_parser():
    parser = argparse.ArgumentParser(
        prog='social-pose',
        description='Diffusion imitation-learning facilitator poses from a 360 degree camera.',
    )
    parser.add_argument(
        '--debug',
        action='store_true',
        help='show the traceback of a failure instead of a one-line error',
    )
    sub = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for command in COMMANDS:
        command.register(sub)
    for command_parser in sub.choices.values():  # also accepted after the command name
        command_parser.add_argument(
            '--debug', action='store_true', default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser


def _expected():
    """Exception classes that mean bad input or environment, not a bug."""
    from rosbags.highlevel import AnyReaderError
    from rosbags.rosbag2 import ReaderError, WriterError
    from safetensors import SafetensorError

    return (ValueError, OSError, AnyReaderError, ReaderError, WriterError, SafetensorError)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except _expected() as exc:
        if args.debug:
            traceback.print_exc()
        message = ' '.join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in message:
            message = f'{exc.filename}: {message}'
        print(f'social-pose {args.command}: error: {message}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f'social-pose {args.command}: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
