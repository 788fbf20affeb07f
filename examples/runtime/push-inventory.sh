#!/bin/sh
# push-inventory.sh: tell a buildgate gate what a Kubernetes cluster runs.
#
# Reads `kubectl get pods -A -o json`, turns every container of every pod
# into {namespace, pod, container, image, image_digest} (image as the pod
# spec names it, image_digest the runtime's imageID once it has pulled,
# when that is a repository digest, repo@sha256:...),
# and POSTs the result to /v1/runtime/inventory, which replaces the
# cluster's previous inventory. A ci-role token is enough.
#
# Environment: GATE_URL (https://gate.example), GATE_TOKEN, CLUSTER (the
# cluster's name as alert scopes match it). Needs kubectl, jq and curl.
# INVENTORY_ONLY=1 prints the JSON instead of sending it.
set -eu

: "${CLUSTER:?set CLUSTER to the cluster name}"
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)

inventory=$(kubectl get pods --all-namespaces -o json | jq -c --arg cluster "$CLUSTER" --arg now "$now" '
  {
    cluster: $cluster,
    observed_at: $now,
    containers: [
      .items[]
      | select(.status.phase == "Running" or .status.phase == "Pending")
      | . as $pod
      | ($pod.status.containerStatuses // []) as $statuses
      | $pod.spec.containers[]
      | . as $c
      | {
          namespace: $pod.metadata.namespace,
          pod: $pod.metadata.name,
          container: $c.name,
          image: $c.image,
          image_digest: ([$statuses[] | select(.name == $c.name) | .imageID | select(contains("@"))][0] // "")
        }
    ]
  }')

if [ "${INVENTORY_ONLY:-}" = 1 ]; then
  printf '%s\n' "$inventory"
  exit 0
fi

: "${GATE_URL:?set GATE_URL to the gate base URL}"
: "${GATE_TOKEN:?set GATE_TOKEN to a ci or admin token}"
printf '%s' "$inventory" | curl -fsS --retry 3 -X POST "$GATE_URL/v1/runtime/inventory" \
  -H "Authorization: Bearer $GATE_TOKEN" -H "Content-Type: application/json" --data-binary @-
echo
