#!/usr/bin/env bash
# Lint the deployment template: cfn-lint (CloudFormation's own rules) and checkov (security
# checks; a check is skipped only in a resource's Metadata.checkov.skip, with the reason).
# Installs the pinned linters into .venv-iac on first use or when infra/requirements.txt changes.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cmp -s infra/requirements.txt .venv-iac/requirements.installed 2>/dev/null; then
  echo "pip: installing the template linters (infra/requirements.txt)"
  [[ -x .venv-iac/bin/python ]] || python3 -m venv .venv-iac
  .venv-iac/bin/pip install -q -r infra/requirements.txt
  cp infra/requirements.txt .venv-iac/requirements.installed
fi
.venv-iac/bin/cfn-lint infra/template.yaml
# --skip-download: no call to the vendor's API for guideline links; the checks are all local.
.venv-iac/bin/checkov -f infra/template.yaml --quiet --compact --skip-download
