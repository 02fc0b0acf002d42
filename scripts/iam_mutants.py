"""The IAM mutation check: which Allow statement of template.yaml's function and task roles
would, if deleted, fail the end-to-end suite.

`make iam-mutants` runs the suite once with LANDFALL_IAM_EVIDENCE set: the local IAM
(scripts/local_iam/enforce.py) writes every request it allowed with the statements that
allowed it. A request allowed by one statement alone is denied without it, and a denial fails
its test (LocalStack's drop), so deleting that statement fails the suite. A statement that
allows no request alone is not needed by any test: another statement covers all it was used
for, or nothing used it. Deleting one statement and rerunning the suite per statement (about
60 runs of 7 minutes) gives the same answer; this reads it from one run.

Usage: iam_mutants.py [--summary] EVIDENCE.jsonl   (one line per statement, or with --summary
only the unneeded ones; then the figures)
"""

import collections
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


class _Loader(yaml.SafeLoader):
    pass


def _intrinsic(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}


_Loader.add_multi_constructor("!", _intrinsic)


def template_statements():
    """(policy name as provisioned, statement key) of every Allow statement, with its roles'
    logical id: the keys the local IAM reports (`<policy>#<Sid>`, or the 1-based index)."""
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=_Loader)
    found = []
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            policies = [
                (f"{logical_id}RolePolicy{n}", p["Statement"])
                for n, p in enumerate(properties.get("Policies", []))
                if isinstance(p, dict) and "Statement" in p
            ]
        elif resource["Type"] == "AWS::IAM::Role":
            policies = [
                (p["PolicyName"], p["PolicyDocument"]["Statement"])
                for p in properties.get("Policies", [])
            ]
        else:
            continue
        for policy, statements in policies:
            for index, statement in enumerate(statements, start=1):
                if statement.get("Effect") == "Allow":
                    found.append((logical_id, f"{policy}#{statement.get('Sid', index)}"))
    return found


def main():
    summary = "--summary" in sys.argv[1:]
    path = [a for a in sys.argv[1:] if a != "--summary"][0]
    evidence = [json.loads(line) for line in open(path, encoding="utf-8")]
    alone = collections.Counter()
    shared = collections.defaultdict(set)
    for request in evidence:
        allowed_by = request["allowed_by"]
        if len(allowed_by) == 1:
            alone[allowed_by[0]] += 1
        for statement in allowed_by:
            shared[statement].update(s for s in allowed_by if s != statement)
    caught, unneeded = [], []
    for owner, statement in template_statements():
        if alone[statement]:
            caught.append(statement)
            if not summary:
                print(
                    f"caught    {owner:32} {statement} ({alone[statement]} requests need it alone)"
                )
        else:
            unneeded.append(statement)
            also = ", ".join(sorted(shared[statement])) or "no request used it"
            print(f"UNNEEDED  {owner:32} {statement} (covered by: {also})")
    tried = len(caught) + len(unneeded)
    print(
        f"iam-mutants: statements_tried={tried} caught={len(caught)} "
        f"unneeded={len(unneeded)} requests={len(evidence)}"
    )


if __name__ == "__main__":
    main()
