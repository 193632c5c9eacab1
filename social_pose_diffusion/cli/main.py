"""The `social-pose` command line: one entry point, one module per subcommand."""
import argparse
import sys

from social_pose_diffusion.cli import (benchmark, demo, evaluate, extract, import_tracks, simulate,
                                       train)

COMMANDS = (simulate, demo, train, evaluate, extract, import_tracks, benchmark)


def build_parser():
    parser = argparse.ArgumentParser(
        prog='social-pose',
        description='Diffusion imitation-learning facilitator poses from a 360 degree camera.')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (ValueError, FileNotFoundError) as exc:
        print(f'social-pose {args.command}: error: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
