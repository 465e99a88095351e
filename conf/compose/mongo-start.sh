#!/usr/bin/env bash
# The compose mongod's start (docker-compose.yml, service mongodb): a one-member replica set that lets no client
# in without a login, like the local stack's real mongod (stack/services.py mongod_command, docs/security.md).
#
# A replica set with access control needs a keyfile, the secret its members authenticate to each other with
# (mongod --keyFile, which implies --auth). One member shares it with nobody, so it is generated here on the
# first start (756 random bytes in base64, as MongoDB's "Deploy a Self-Managed Replica Set With Keyfile
# Authentication" does with openssl), beside the replica set's config (the image's /data/configdb), mode 0400;
# the image's entrypoint, running as root, gives it to the mongodb user before it drops to that user.
# Given MONGO_INITDB_ROOT_USERNAME and _PASSWORD (the latter from MONGO_ADMIN_PASSWORD, the .env variable the
# suite's other clients name too), that entrypoint creates the admin on a fresh data volume
# (in a temporary mongod without --replSet and --keyFile) and adds --auth; the healthcheck then initiates the
# set as the admin, and jobs.setup creates the pipeline's users (jobs/mongo_users.py).
# AQSTREAM_MONGO_KEYFILE and AQSTREAM_MONGO_ENTRYPOINT move the image's paths (for the unit tests,
# tests/unit/test_compose.py, which run this script without Docker).
set -euo pipefail

keyfile=${AQSTREAM_MONGO_KEYFILE:-/data/configdb/aqstream.keyfile}
entrypoint=${AQSTREAM_MONGO_ENTRYPOINT:-docker-entrypoint.sh}

for variable in MONGO_INITDB_ROOT_USERNAME MONGO_ADMIN_PASSWORD; do
    if [[ -z ${!variable:-} ]]; then
        echo "mongo-start: $variable is not set: the mongod would start without an admin" >&2
        exit 1
    fi
done
if [[ ! -s $keyfile ]]; then
    (umask 077 && head -c 756 /dev/urandom | base64 -w 0 > "$keyfile")
fi
chmod 0400 "$keyfile"
export MONGO_INITDB_ROOT_PASSWORD=$MONGO_ADMIN_PASSWORD
exec "$entrypoint" mongod --replSet rs0 --bind_ip_all --keyFile "$keyfile"
