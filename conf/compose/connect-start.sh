#!/usr/bin/env bash
# Kafka Connect's start in docker compose (Dockerfile.connect): the worker's properties from the template
# (connect-distributed.properties.in), its two addresses and its SASL login from the environment, then the
# worker. The login is the connect principal's, for the worker's own clients and, with the producer.,
# consumer. and admin. prefixes, for the clients it makes for the connectors (they do not inherit the
# worker's): what jobs/kafka_auth.java_client_properties gives the local stack's worker (stack/services.py).
# The properties file holds the password: 0600, in the container's /tmp. AQSTREAM_CONNECT_PROPERTIES and
# AQSTREAM_CONNECT_COMMAND move the file and the worker (for tests/unit/test_compose.py, without Docker).
set -euo pipefail
umask 077
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/sasl.sh"

properties=${AQSTREAM_CONNECT_PROPERTIES:-/tmp/connect.properties}
{
    sed -e "s|@BOOTSTRAP@|${CONNECT_BOOTSTRAP_SERVERS}|" -e "s|@HOST@|${CONNECT_ADVERTISED_HOST}|" \
        "$here/connect-distributed.properties.in"
    jaas=$(jaas_config "$CONNECT_SASL_USERNAME" "$KAFKA_CONNECT_PASSWORD")
    for prefix in "" producer. consumer. admin.; do
        printf '%ssecurity.protocol=%s\n' "$prefix" "$CONNECT_SECURITY_PROTOCOL"
        printf '%ssasl.mechanism=%s\n' "$prefix" "$CONNECT_SASL_MECHANISM"
        printf '%ssasl.jaas.config=%s\n' "$prefix" "$jaas"
    done
} > "$properties"
# the worker needs the file, not the variable (a connector could read the environment)
unset KAFKA_CONNECT_PASSWORD jaas
exec "${AQSTREAM_CONNECT_COMMAND:-/opt/kafka/bin/connect-distributed.sh}" "$properties"
