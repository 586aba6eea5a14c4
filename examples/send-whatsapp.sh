#!/bin/sh
# Sends one chatcrm reply through the WhatsApp Cloud API (POST /{phone-number-id}/messages).
#
#   WHATSAPP_TOKEN=EAAG… chatcrm deliver --command examples/send-whatsapp.sh
#
# The phone number id is the one the client wrote to (from the webhook), else
# WHATSAPP_PHONE_NUMBER_ID. Prints WhatsApp's answer, from which chatcrm keeps the
# message's wamid (its statuses then mark the reply delivered and read); on an error,
# prints it on stderr and exits non-zero, so that the reply is tried again later.
set -eu
: "${WHATSAPP_TOKEN:?set WHATSAPP_TOKEN to a WhatsApp Cloud API access token}"
base="${WHATSAPP_API_BASE:-https://graph.facebook.com/v21.0}"
phone="${CHATCRM_PHONE_NUMBER_ID:-${WHATSAPP_PHONE_NUMBER_ID:-}}"
: "${phone:?no phone number id: set WHATSAPP_PHONE_NUMBER_ID}"

# The phone number id goes into a URL and curl's configuration: digits only.
case $phone in
*[!0-9]*) printf 'WhatsApp: the phone number id is not digits; not sent\n' >&2; exit 65 ;;
esac

# The recipient came in a webhook: it goes into the JSON as chatcrm encoded it, never raw.
body=$(printf '{"messaging_product":"whatsapp","recipient_type":"individual","to":%s,"type":"text","text":{"preview_url":false,"body":%s}}' \
    "$CHATCRM_CLIENT_ID_JSON" "$CHATCRM_TEXT_JSON")
# The token goes in curl's configuration on stdin, not on its command line (ps shows that).
if answer=$(printf 'url = "%s/%s/messages"\nheader = "Authorization: Bearer %s"\n' "$base" "$phone" "$WHATSAPP_TOKEN" |
    curl --config - --silent --show-error --fail-with-body --max-time 20 \
        -H 'Content-Type: application/json' --data-binary "$body"); then
    printf '%s\n' "$answer"
else
    status=$?
    printf 'WhatsApp: %s\n' "${answer:-no answer}" >&2
    exit "$status"
fi
