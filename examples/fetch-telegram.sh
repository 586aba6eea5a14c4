#!/bin/sh
# Fetches a bot's new updates (getUpdates) and imports them; run from cron.
# Remembers the next update to ask for in $CHATCRM_SPOOL/telegram-offset. A batch is
# confirmed to Telegram (the next offset) only once chatcrm has imported it. An update
# chatcrm cannot read is skipped and named on stderr (--skip-invalid), so that one bad
# update does not hold back the ones after it; a batch that cannot be imported at all is
# kept as telegram-….json.failed (the last five) and asked for again on the next run.
set -eu
: "${TELEGRAM_BOT_TOKEN:?set TELEGRAM_BOT_TOKEN to the bot token @BotFather gave}"
base="${TELEGRAM_API_BASE:-https://api.telegram.org}"
spool="${CHATCRM_SPOOL:-$HOME/.local/share/chatcrm/spool}"
mkdir -p "$spool"
offset=$(cat "$spool/telegram-offset" 2>/dev/null || echo 0)
batch="$spool/telegram-$(date -u +%Y%m%dT%H%M%S)-$$.json"

printf 'url = "%s/bot%s/getUpdates?offset=%s&timeout=0"\n' "$base" "$TELEGRAM_BOT_TOKEN" "$offset" |
    curl --config - --silent --show-error --fail-with-body --max-time 30 -o "$batch"
last=$(grep -o '"update_id": *[0-9]*' "$batch" | tail -n 1 | tr -dc '0-9')
if [ -z "$last" ]; then
    rm -f "$batch"          # nothing new
    exit 0
fi
if ! chatcrm ingest --skip-invalid "$batch"; then
    mv "$batch" "$batch.failed"
    ls -t "$spool"/telegram-*.json.failed | tail -n +6 | while read -r old; do rm -f "$old"; done
    exit 1
fi
echo $((last + 1)) > "$spool/telegram-offset"
mv "$batch" "$batch.done"
