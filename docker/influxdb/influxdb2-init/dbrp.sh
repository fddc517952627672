#!/bin/bash
# Run once by the influxdb:2.x image after its setup (docker-entrypoint-initdb.d; run-parts needs
# this file executable). The InfluxQL dashboards query database "k6", retention policy
# "autogen": map them explicitly to the setup's bucket. (2.x also derives a read-only "virtual"
# mapping from a bucket named k6; the explicit one does not depend on that, and is the default
# rp of k6.) The entrypoint exports DOCKER_INFLUXDB_INIT_BUCKET_ID and points the influx CLI at
# its temporary server with the admin token; --org as in the image's documented example.
set -euo pipefail
influx v1 dbrp create \
  --bucket-id "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
  --db k6 \
  --rp autogen \
  --default \
  --org "${DOCKER_INFLUXDB_INIT_ORG}"
