#!/usr/bin/env bash
# `make demo`: validate, plan, apply and plan again against the embedded local emulator.
# The values below are demo stand-ins set in this shell only; real ones come from your CI's secrets.
set -euo pipefail
cd "$(dirname "$0")"
RECONCILER="${RECONCILER:-../.venv/bin/reconciler}"

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

# Bold step headers only on a terminal, and never with NO_COLOR (https://no-color.org).
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  bold=$'\033[1m' reset=$'\033[0m'
else
  bold="" reset=""
fi
step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$reset"; }

step reconciler validate secrets.yaml
"$RECONCILER" validate secrets.yaml 2>&1
echo "(These warnings are on purpose: secrets.yaml binds secrets that no example workflow uses, to"
echo " show the check. The steps below count them in one line instead of repeating them.)"

step reconciler plan secrets.yaml --api-url local
"$RECONCILER" plan secrets.yaml --api-url local

step reconciler apply secrets.yaml --api-url local --auto-approve
"$RECONCILER" apply secrets.yaml --api-url local --auto-approve

step reconciler plan secrets.yaml --api-url local --detailed-exitcode
"$RECONCILER" plan secrets.yaml --api-url local --detailed-exitcode

step reconciler drift secrets.yaml --api-url local
"$RECONCILER" drift secrets.yaml --api-url local
