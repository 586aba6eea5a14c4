#!/bin/sh
# Sends one chatcrm reply through the Telegram Bot API (sendMessage), as a Telegram
# Business account when the chat came through one (business_connection_id).
#
#   TELEGRAM_BOT_TOKEN=123456:ABC… chatcrm deliver --command examples/send-telegram.sh
#
# chatcrm gives the reply in CHATCRM_* variables (and as JSON on stdin). Prints
# Telegram's answer, from which chatcrm keeps the message_id; on an error, prints it on
# stderr and exits non-zero, so that the reply is tried again later.
set -eu
: "${TELEGRAM_BOT_TOKEN:?set TELEGRAM_BOT_TOKEN to the bot token @BotFather gave}"
base="${TELEGRAM_API_BASE:-https://api.telegram.org}"

set -- --data-urlencode "chat_id=$CHATCRM_CLIENT_ID" --data-urlencode "text=$CHATCRM_TEXT"
if [ -n "${CHATCRM_BUSINESS_CONNECTION_ID:-}" ]; then
    set -- "$@" --data-urlencode "business_connection_id=$CHATCRM_BUSINESS_CONNECTION_ID"
fi
# The token goes in curl's configuration on stdin, not on its command line (ps shows that).
if answer=$(printf 'url = "%s/bot%s/sendMessage"\n' "$base" "$TELEGRAM_BOT_TOKEN" |
    curl --config - --silent --show-error --fail-with-body --max-time 20 "$@"); then
    printf '%s\n' "$answer"
else
    status=$?
    printf 'Telegram: %s\n' "${answer:-no answer}" >&2
    exit "$status"
fi
