# Shell helpers of the compose start scripts (sourced): a SCRAM login as Kafka's Java clients and broker
# read it. The same text as jobs/kafka_auth.jaas_config, for the containers that have no Python.

SCRAM_LOGIN_MODULE=org.apache.kafka.common.security.scram.ScramLoginModule

# "value" in JAAS quoting: a backslash or double quote in a password of your own is escaped
jaas_quoted() {
    local value=${1//\\/\\\\}
    printf '"%s"' "${value//\"/\\\"}"
}

# jaas_config USER PASSWORD: the sasl.jaas.config value of a SCRAM login
jaas_config() {
    printf '%s required username=%s password=%s;' "$SCRAM_LOGIN_MODULE" "$(jaas_quoted "$1")" "$(jaas_quoted "$2")"
}
