#!/usr/bin/env bash
# `make demo`: validate, plan, apply and plan again against the embedded local emulator.
# The values below are demo stand-ins set in this shell only; real ones come from your CI's secrets.
set -euo pipefail
cd "$(dirname "$0")"
RECONCILER="../.venv/bin/reconciler"

export GITHUB_ACCESS_TOKEN="ghp_demoDemoDemoDemo0001"
export SLACK_BOT_TOKEN="xoxb-demo-demo-demo-0002"
export JIRA_USER="jira-demo-bot"
export JIRA_API_TOKEN="jira-demo-demo-0004"
export TAVILY_API_KEY="tvly-demo-demo-0005"
mkdir -p .secrets
printf 'lin_api_demoDemoDemo0003\n' > .secrets/linear
chmod 600 .secrets/linear
# A fresh local account every run, so the demo always starts from nothing.
rm -rf .reconciler

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step reconciler validate secrets.yaml
"$RECONCILER" validate secrets.yaml

step reconciler plan secrets.yaml --api-url local
"$RECONCILER" plan secrets.yaml --api-url local

step reconciler apply secrets.yaml --api-url local --auto-approve
"$RECONCILER" apply secrets.yaml --api-url local --auto-approve

step reconciler plan secrets.yaml --api-url local --detailed-exitcode
"$RECONCILER" plan secrets.yaml --api-url local --detailed-exitcode

step reconciler drift secrets.yaml --api-url local
"$RECONCILER" drift secrets.yaml --api-url local
