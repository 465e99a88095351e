#!/usr/bin/env bash
# The compose broker's start (docker-compose.yml, service kafka): SASL/SCRAM, StandardAuthorizer and ACLs
# like the local stack's broker (conf/stack/kafka-server.properties, docs/security.md).
#
# The apache/kafka image renders server.properties from the KAFKA_* variables and formats the storage on
# each start (/etc/kafka/docker/run), with no way to add SCRAM credentials, which a KRaft broker gets at
# format time (kafka-storage format --add-scram). So, before handing over to the image's start:
#   1. the broker's own login (the admin: its inter-broker login) in a JAAS file that KAFKA_OPTS names, and
#      the admin's client properties for the healthcheck, both 0600 in /etc/kafka/secrets;
#   2. a fresh storage is formatted with one SCRAM credential per principal (AQSTREAM_SCRAM_USERS:
#      user=VARIABLE pairs), from the same KAFKA_* settings the image renders (its own format then finds the
#      storage formatted and goes on, as on every restart); a storage formatted without one of them is
#      refused, naming the volume to recreate;
#   3. the password variables are unset: the image would make every KAFKA_* variable a broker setting.
# AQSTREAM_KAFKA_HOME, AQSTREAM_KAFKA_SECRETS and AQSTREAM_KAFKA_RUN move the image's paths (for the unit
# tests, tests/unit/test_compose.py, which run this script without Docker).
set -euo pipefail
umask 077
. "$(dirname "${BASH_SOURCE[0]}")/sasl.sh"

kafka_home=${AQSTREAM_KAFKA_HOME:-/opt/kafka}
secrets=${AQSTREAM_KAFKA_SECRETS:-/etc/kafka/secrets}
run=${AQSTREAM_KAFKA_RUN:-/etc/kafka/docker/run}
mechanism=$KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL
data=$KAFKA_LOG_DIRS
# the principals the storage was formatted with (names only), beside the data: the volume's own record
formatted_with=$data/aqstream-scram-users

fail() {
    echo "kafka-start: $*" >&2
    exit 1
}

# the password of SCRAM user $1, from the variable AQSTREAM_SCRAM_USERS names for it
password_of() {
    local entry variable
    for entry in $AQSTREAM_SCRAM_USERS; do
        if [[ ${entry%%=*} == "$1" ]]; then
            variable=${entry#*=}
            [[ -n ${!variable:-} ]] || fail "$variable (the password of $1) is not set"
            printf '%s' "${!variable}"
            return
        fi
    done
    fail "$1 is not in AQSTREAM_SCRAM_USERS"
}

users=()
for entry in $AQSTREAM_SCRAM_USERS; do
    users+=("${entry%%=*}")
done
admin_password=$(password_of "$AQSTREAM_KAFKA_ADMIN")
admin_jaas=$(jaas_config "$AQSTREAM_KAFKA_ADMIN" "$admin_password")

# 1. the broker's login (the JAAS file's KafkaServer section serves every SASL listener) and the healthcheck's
jaas_file=$secrets/kafka_server_jaas.conf
printf 'KafkaServer {\n  %s\n};\n' "$admin_jaas" > "$jaas_file"
printf 'security.protocol=SASL_PLAINTEXT\nsasl.mechanism=%s\nsasl.jaas.config=%s\n' "$mechanism" "$admin_jaas" \
    > "$secrets/admin-client.properties"
export KAFKA_OPTS="${KAFKA_OPTS:+$KAFKA_OPTS }-Djava.security.auth.login.config=$jaas_file"

# 2. the storage, with the SCRAM credentials
if [[ ! -f $data/meta.properties ]]; then
    scram=()
    for user in "${users[@]}"; do
        password=$(password_of "$user")
        scram+=(--add-scram "$mechanism=[name=$user,password=$password]")
    done
    format_config=$(mktemp)
    # what formatting reads and validates, from the variables the image renders server.properties from
    cat > "$format_config" <<PROPERTIES
process.roles=$KAFKA_PROCESS_ROLES
node.id=$KAFKA_NODE_ID
controller.quorum.voters=$KAFKA_CONTROLLER_QUORUM_VOTERS
controller.listener.names=$KAFKA_CONTROLLER_LISTENER_NAMES
listeners=$KAFKA_LISTENERS
advertised.listeners=$KAFKA_ADVERTISED_LISTENERS
listener.security.protocol.map=$KAFKA_LISTENER_SECURITY_PROTOCOL_MAP
inter.broker.listener.name=$KAFKA_INTER_BROKER_LISTENER_NAME
sasl.enabled.mechanisms=$KAFKA_SASL_ENABLED_MECHANISMS
sasl.mechanism.inter.broker.protocol=$mechanism
log.dirs=$data
PROPERTIES
    # the passwords are on this command line for the second it runs (as in the local stack)
    "$kafka_home/bin/kafka-storage.sh" format --cluster-id "$CLUSTER_ID" --config "$format_config" "${scram[@]}"
    rm -f "$format_config"
    printf '%s\n' "${users[@]}" > "$formatted_with"
else
    missing=()
    for user in "${users[@]}"; do
        grep -qxF -- "$user" "$formatted_with" 2> /dev/null || missing+=("$user")
    done
    if ((${#missing[@]})); then
        fail "the storage in $data (volume kafka-data) was formatted without SCRAM credentials for" \
            "${missing[*]} (before authentication, or before that principal existed); recreate it, its topics" \
            "are lost: docker compose down, then docker volume rm <project>_kafka-data (aqstream_kafka-data)"
    fi
fi

# 3. hand over to the image's start
for entry in $AQSTREAM_SCRAM_USERS; do
    unset "${entry#*=}"
done
unset admin_password admin_jaas password
exec "$run"
