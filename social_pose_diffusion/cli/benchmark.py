"""`social-pose benchmark TARGET`: speed measurements written as JSON."""

import importlib
import json

from social_pose_diffusion.cli.arguments import output_path


def register(sub):
    from social_pose_diffusion.bench import TARGETS

    parser = sub.add_parser(
        'benchmark',
        help='measure speed (JSON report)',
        description='Measure speed on this machine; prints and writes a JSON report.',
    )
    targets = parser.add_subparsers(dest='target', metavar='TARGET', required=True)
    for name in TARGETS:
        module = importlib.import_module(f'social_pose_diffusion.bench.{name}')
        p = targets.add_parser(
            name, help=module.__doc__.splitlines()[0], description=module.__doc__
        )
        p.add_argument(
            '--out',
            type=output_path,
            default=f'benchmarks/results/{name}.json',
            help='JSON report path (default: %(default)s)',
        )
        module.add_arguments(p)
        p.set_defaults(func=lambda args, m=module: _run(m, args))


def _run(module, args):
    from social_pose_diffusion.bench import machine
    from social_pose_diffusion.core.atomic import write_json

    report = {'machine': machine(), **module.run(args)}
    write_json(args.out, report)
    print(json.dumps(report, indent=2))
    print(f'wrote {args.out}')
