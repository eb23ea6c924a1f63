#!/usr/bin/env python3
"""Checks GitLab CI files against ci/gitlab/gitlab-ci.schema.json (the keywords Perch uses) plus
what a schema cannot say: every job's stage is declared in `stages`, every `needs` names a job of
an earlier or the same stage. Usage: lint-gitlab-ci.py FILE... (exit 1 on problems)."""
import json
import os
import sys

import jsonschema
import yaml

SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ci", "gitlab", "gitlab-ci.schema.json")


def check(path, schema):
    with open(path) as f:
        doc = yaml.safe_load(f)
    problems = []
    validator = jsonschema.Draft202012Validator(schema)
    for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in e.path) or "(top)"
        problems.append(f"{path}: {where}: {e.message}")
    if not isinstance(doc, dict):
        return problems
    reserved = set(schema["properties"])
    stages = doc.get("stages", ["build", "test", "deploy"])
    jobs = {k: v for k, v in doc.items() if k not in reserved and not k.startswith(".") and isinstance(v, dict)}
    for name, job in jobs.items():
        stage = job.get("stage")
        if stage not in stages:
            problems.append(f"{path}: {name}/stage: '{stage}' is not in stages {stages}")
            continue
        for need in job.get("needs", []):
            if need not in jobs:
                problems.append(f"{path}: {name}/needs: no job named '{need}'")
            elif jobs[need].get("stage") in stages and stages.index(jobs[need]["stage"]) > stages.index(stage):
                problems.append(f"{path}: {name}/needs: '{need}' runs in a later stage")
    return problems


def main():
    with open(SCHEMA) as f:
        schema = json.load(f)
    problems = [p for path in sys.argv[1:] for p in check(path, schema)]
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(f"lint-gitlab-ci: {len(sys.argv) - 1} file(s) ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
