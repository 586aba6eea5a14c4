#!/bin/sh
# Sends one chatcrm reply with the sender of its channel (CHATCRM_CHANNEL).
#   chatcrm deliver --command examples/send-channel.sh
here=$(dirname "$0")
case "$CHATCRM_CHANNEL" in
    telegram) exec "$here/send-telegram.sh" ;;
    whatsapp) exec "$here/send-whatsapp.sh" ;;
    *) echo "no sender for channel $CHATCRM_CHANNEL" >&2; exit 2 ;;
esac
