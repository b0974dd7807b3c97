#!/usr/bin/env bash
# verify-deploy.sh SERVICE [COMMIT]: a deploy script's verification step as one deploycheck gate.
#
# Replaces the hand-written checks of a deploy script (seed 002's `deploy-service.sh` step
# [6/6], which grepped one file of the image and only warned) with every postdeploy check:
# traffic on the new revision, rollout, digest, commit, the code in the image, boot and
# heartbeat logs, IAM. In deploy-service.sh:
#
#   echo "[6/6] Verifying the deploy..."
#   ci/verify-deploy.sh "$SERVICE" "$BUILD_COMMIT"
#
# COMMIT, when given, must be non-empty: `"$BUILD_COMMIT"` with the variable unset would
# otherwise verify nothing about the commit, so it is refused (exit 4).
#
# Environment (all optional):
#   DEPLOYCHECK_WAIT        seconds to wait for the new revision to settle (default 600)
#   DEPLOYCHECK_REPORT_DIR  where report.md/json/txt/html go (default ${TMPDIR:-/tmp}/deploycheck-SERVICE)
#   DEPLOYCHECK_ARGS        further deploycheck options, split on spaces
#                           (e.g. "--inventory deploy/services.yaml --fail-on P1")
#
# Prints deploycheck's findings, then one verdict line. Exit code: 0 verified, 1 not verified
# (a check failed or could not observe its fact), 4 bad usage, bad inventory or no credentials;
# any other code deploycheck gives is passed on as it is.
set -euo pipefail

readonly EXIT_USAGE=4

usage() {
  echo "usage: $(basename "$0") SERVICE [COMMIT]" >&2
  exit "${EXIT_USAGE}"
}

if [ "$#" -lt 1 ] || [ "$#" -gt 2 ] || [ -z "$1" ]; then
  usage
fi
service=$1
report_dir=${DEPLOYCHECK_REPORT_DIR:-${TMPDIR:-/tmp}/deploycheck-${service}}

args=(gate "${service}" --wait "${DEPLOYCHECK_WAIT:-600}" --report-dir "${report_dir}")
if [ "$#" -eq 2 ]; then
  if [ -z "$2" ]; then
    echo "verify-deploy: COMMIT was given but is empty (an unset variable?); refusing to verify without it" >&2
    exit "${EXIT_USAGE}"
  fi
  args+=(--expect-commit "$2")
fi
read -r -a extra <<< "${DEPLOYCHECK_ARGS:-}"

if ! command -v deploycheck >/dev/null; then
  echo "verify-deploy: deploycheck is not installed: pip install deploycheck" >&2
  exit "${EXIT_USAGE}"
fi

rc=0
deploycheck "${args[@]}" "${extra[@]}" || rc=$?

case "${rc}" in
  0) echo "VERIFIED: ${service} serves what was deployed; every postdeploy check passed (report: ${report_dir}/report.md)" ;;
  1) echo "NOT VERIFIED: ${service} failed the gate; causes and fixes above (report: ${report_dir}/report.md)" ;;
  4) echo "CANNOT VERIFY: ${service}: bad usage, inventory or credentials; see the error above" ;;
  *) echo "CANNOT VERIFY: ${service}: deploycheck exited ${rc}; see its output above" ;;
esac
exit "${rc}"
