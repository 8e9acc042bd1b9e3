#!/bin/sh
# Run by the Job minio-setup with MinIO's root credentials (Secret selfsup-minio-root), which no
# other pod gets: creates the buckets, one policy per purpose, and one user per purpose from its
# Secret. Idempotent: re-running updates the policies and the users' keys.
set -eu
export MC_CONFIG_DIR=/tmp/mc
export MC_HOST_local="http://${MINIO_ROOT_USER}:${MINIO_ROOT_PASSWORD}@minio:9000"
until mc ready local; do echo "waiting for MinIO"; sleep 5; done
mc mb --ignore-existing local/selfsup-pipelines local/selfsup
for purpose in tasks registry-writer data-writer model-reader; do
  mc admin policy create local "selfsup-$purpose" "/setup/$purpose-policy.json"
done
user() {  # user ACCESS_KEY SECRET_KEY POLICY
  mc admin user add local "$1" "$2"
  mc admin policy attach local "$3" --user "$1" 2>/dev/null \
    || mc admin user info local "$1" | grep -q "$3"  # already attached
}
user "$TASKS_ACCESS_KEY" "$TASKS_SECRET_KEY" selfsup-tasks
user "$REGISTRY_ACCESS_KEY" "$REGISTRY_SECRET_KEY" selfsup-registry-writer
user "$MODEL_READER_ACCESS_KEY" "$MODEL_READER_SECRET_KEY" selfsup-model-reader
echo "MinIO: buckets, policies and users are set up"
