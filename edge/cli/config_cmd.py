"""`zastava-edge config validate FILE` and `config schema`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="validate node configs, print their JSON Schema")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", parser_class=type(p))
    csub.required = True
    v = csub.add_parser("validate", help="check a node config; prints every problem, exits 0 when there is none")
    v.add_argument("files", nargs="+", type=Path)
    v.add_argument("--check-models", action="store_true",
                   help="also load each camera's model and check its rules' classes against it")
    v.set_defaults(run=run_validate)
    s = csub.add_parser("schema", help="print the node config's JSON Schema")
    s.set_defaults(run=run_schema)


def _model_problems(path: Path, config) -> list[str]:
    from edge.detect import Detector
    from edge.errors import ZastavaError

    problems = []
    for i, cam in enumerate(config.cameras):
        try:
            names = set(Detector(cam.detector).names)
        except ZastavaError as e:
            problems.append(f"{path}: cameras[{i}].detector.model: {e}")
            continue
        for j, rule in enumerate(cam.rules):
            for k, cls in enumerate(rule.classes):
                if cls not in names:
                    problems.append(f"{path}: cameras[{i}].rules[{j}].classes[{k}]: {cls!r} is not a class of the model")
    return problems


def run_validate(args: argparse.Namespace) -> int:
    from edge.config import ConfigError, load_config

    failed = False
    for path in args.files:
        try:
            config = load_config(path)
            problems = _model_problems(path, config) if args.check_models else []
        except ConfigError as e:
            problems = e.problems
        if problems:
            failed = True
            for line in problems:
                print(line, file=sys.stderr)
        else:
            cams = ", ".join(f"{c.id} ({len(c.zones)} zones, {len(c.lines)} lines, {len(c.rules)} rules)" for c in config.cameras)
            print(f"{path}: ok — node {config.node.site}/{config.node.id}, cameras: {cams}")
    return 2 if failed else 0


def run_schema(args: argparse.Namespace) -> int:
    from edge.config import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0
