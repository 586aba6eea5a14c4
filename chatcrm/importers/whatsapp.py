"""WhatsApp's "Export chat" text file: Android and iOS, every layout since 2013, any locale.

A message starts with a time stamp the phone writes in its own locale: in brackets
(`[18/03/2022, 14:56:01] Ana: …`, iOS), before ` - ` (`18.03.22 14:56 - Ana: …`, Android)
or before `: ` (`7/1/16, 4:56:55 PM: Ana: …`, old iOS). The stamp holds a date (numbers
in any order, or a month name; Latin, Arabic-Indic or Persian digits; Gregorian,
Buddhist-era or Persian years) and a time (24-hour, or 12-hour with the locale's marker
before or after it). The first stamp fixes the file's layout; later lines are messages'
headers only when they have the same layout.

The file is read twice: a first pass over the headers infers whether dates are day-first
or month-first (a day above 12 decides; otherwise the order under which the dates run
forward) and collects the authors; the second pass reads the messages. A stream that
cannot seek (stdin) is spooled to a temporary file, up to a bound.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import BinaryIO, Iterator

from chatcrm import times
from chatcrm.errors import InvalidInput
from chatcrm.events import Event, Invalid
from chatcrm.importers.limits import MAX_LINE, MAX_SPOOL, MAX_TEXT, excerpt, mib, text_lines
from chatcrm.importers.roles import Roles, authors_text, clean_name, normalise, unresolved

# ------------------------------------------------------------------ the time stamp

_DIGITS = {**{0x0660 + i: str(i) for i in range(10)}, **{0x06F0 + i: str(i) for i in range(10)}}
_PERSIAN_DIGITS = frozenset(chr(0x06F0 + i) for i in range(10))
# Marks and spaces the apps put inside stamps, turned into plain spaces (one for one, so
# places in the translated line are places in the line).
_SOFT = {0x200E: " ", 0x200F: " ", 0x061C: " ", 0x00A0: " ", 0x202F: " ", 0x2009: " ", 0xFEFF: " ",
         0x060C: ",", 0x066B: ".", 0x066C: ","}
_TRANSLATE = {**_DIGITS, **_SOFT}
_NEEDS_TRANSLATION = re.compile("[" + "".join(map(chr, _TRANSLATE)) + "]")

_BRACKET = re.compile(r"^ *\[([^\[\]]{6,64})\] *(.*)$", re.S)
_DASH = re.compile(r"^ *([^\[\]]{6,64}?) [-–] (.*)$", re.S)
_COLON = re.compile(r"^ *(\d[^\[\]]{5,40}?(?:\d\d|[AaPp]\.? ?[Mm]\.?)): (.*)$", re.S)
_LAYOUTS = (("bracket", _BRACKET), ("dash", _DASH), ("colon", _COLON))

# 12-hour markers, as the apps write them, and what each does to the hour
_AM = ("am", "a.m.", "a. m.", "a.m", "a. m", "vorm.", "vorm", "上午", "午前", "오전", "ص", "ق.ظ.", "ق.ظ",
       "in the morning", "de la mañana", "de la madrugada", "da manhã", "da madrugada", "du matin",
       "π.μ.", "пп", "sa", "ก่อนเที่ยง", "पूर्वाह्न", "قبل‌ازظهر", "fm", "f.m.", "a", "ap.")
_PM = ("pm", "p.m.", "p. m.", "p.m", "p. m", "nachm.", "nachm", "下午", "午後", "오후", "م", "ب.ظ.", "ب.ظ",
       "in the afternoon", "de la tarde", "da tarde", "de l'après-midi", "de l’après-midi", "du soir",
       "in the evening", "μ.μ.", "пп.", "ch", "หลังเที่ยง", "अपराह्न", "بعدازظهر", "em", "e.m.", "p", "ip.")
_NIGHT = ("at night", "de la noche", "da noite", "de la nuit")
_MARKERS = {**{m: "am" for m in _AM}, **{m: "pm" for m in _PM}, **{m: "night" for m in _NIGHT}}
_MARKER = "|".join(re.escape(m) for m in sorted(_MARKERS, key=len, reverse=True))
_TIME_COLON = re.compile(
    rf"(?:(?P<pre>{_MARKER}) ?)?(?<![\d:])(?P<h>\d{{1,2}}):(?P<m>\d\d)(?::(?P<s>\d\d))?(?![\d:])(?: ?(?P<post>{_MARKER})(?![^\W\d_]))?",
    re.I,
)
_TIME_DOT = re.compile(
    rf"(?:(?P<pre>{_MARKER}) ?)?(?<![\d.])(?P<h>\d{{1,2}})\.(?P<m>\d\d)(?:\.(?P<s>\d\d))?(?![\d.])(?: ?(?P<post>{_MARKER})(?![^\W\d_]))?",
    re.I,
)
_MONTHS = {}
for _number, _names in enumerate((
    "jan january ene enero janeiro janv janvier januar gen gennaio januari jan.",
    "feb february febrero fev fevereiro févr février februar febbraio februari",
    "mar march marzo março mars märz mär maart maret",
    "apr april abr abril avr avril aprile",
    "may mayo maio mai mei maggio mag",
    "jun june junio junho juin juni giu giugno",
    "jul july julio julho juil juillet juli lug luglio",
    "aug august ago agosto août aout agustus",
    "sep sept september septiembre set setembro septembre settembre",
    "oct october oct octubre out outubro octobre okt oktober ott ottobre",
    "nov november noviembre novembro novembre",
    "dec december dic diciembre dez dezembro déc décembre dezember dicembre des desember",
), start=1):
    for _name in _names.split():
        _MONTHS[_name] = _number
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_ERA_BE = r"(?:BE|B\.E\.|พ\.ศ\.|พ\.ศ|هـ|ه‍|AH|A\.H\.)"
_NUMERIC_DATE = re.compile(
    rf"^(?P<a>\d{{1,4}})(?P<sep>[./-]) ?(?P<b>\d{{1,2}})[./-] ?(?P<c>\d{{1,4}})\.?(?: ?(?P<era>{_ERA_BE}))?$", re.I
)
_CJK_DATE = re.compile(r"^(?P<a>\d{4})年(?P<b>\d{1,2})月(?P<c>\d{1,2})日$")
_NAMED_DATES = (
    re.compile(rf"^(?P<day>\d{{1,2}})\.? (?:de )?(?P<mon>{_MONTH})\.?,?(?: (?:de )?(?P<year>\d{{4}}))?$", re.I),
    re.compile(rf"^(?P<mon>{_MONTH})\.? (?P<day>\d{{1,2}}),?(?: (?P<year>\d{{4}}))?$", re.I),
)
_CONNECTORS = re.compile(r"^(?:,|klo|kl\.|kl|à|um|at|alle|om|o|в|saat|lúc|의|às|a las|a la|a les|de|г\.|г)$", re.I)


@dataclass(frozen=True)
class Stamp:
    """A stamp's parts: the date as written (numbers, or day/month with a year or none)
    and the time on the 24-hour clock."""

    numbers: tuple[str, str, str] | None  # a numeric date as written (a, b, c)
    named: tuple[int, int, int | None] | None  # (day, month, year or None)
    hour: int
    minute: int
    second: int
    era: str  # "" (Gregorian, or told by the year), "be" (Buddhist), "ah" (Islamic)
    persian: bool
    dot: bool


@dataclass(frozen=True)
class Header:
    layout: str
    stamp: Stamp
    rest: str  # the text after the stamp, as in the line


def header_line(line: str, layout: str | None = None) -> Header | None:
    """The message header at the start of a line, or None; `layout` (from the file's first
    header) restricts which layout is looked for."""
    head = line[:72]
    translated = head.translate(_TRANSLATE) + line[72:] if _NEEDS_TRANSLATION.search(head) else line
    for name, pattern in _LAYOUTS:
        if layout is not None and name != layout:
            continue
        match = pattern.match(translated)
        if match is None:
            continue
        persian = not _PERSIAN_DIGITS.isdisjoint(line[: match.end(1) + 1])
        stamp = _stamp(match[1], persian)
        if stamp is not None:
            return Header(name, stamp, line[match.start(2):])
    return None


_AROUND_SEPARATOR = re.compile(r"(?<=\d) *([./-]) *(?=\d)")  # `18 /3 /2022` (RLM marks), `2022. 3. 18.`
# The stamp most exports write (`18/03/2022, 14:56:01`), read without the general search.
_PLAIN = re.compile(r"(\d{1,4})([./-])(\d{1,2})\2(\d{1,4})\.?,? (\d{1,2}):(\d\d)(?::(\d\d))?")


@lru_cache(maxsize=1024)
def _stamp(chunk: str, persian: bool) -> Stamp | None:
    chunk = _AROUND_SEPARATOR.sub(r"\1", " ".join(chunk.split()))
    plain = _PLAIN.fullmatch(chunk)
    if plain:
        a, sep, b, c, hour, minute, second = plain.groups()
        if int(hour) <= 23 and int(minute) <= 59 and int(second or 0) <= 59:
            return Stamp((a, b, c), None, int(hour), int(minute), int(second or 0), "", persian, sep == ".")
    candidates = list(_TIME_COLON.finditer(chunk))
    dotted = not candidates
    if dotted:
        candidates = list(_TIME_DOT.finditer(chunk))[::-1]  # date first: the time is the later one
    for time in candidates:
        hour, minute, second = int(time["h"]), int(time["m"]), int(time["s"] or 0)
        marker = time["pre"] or time["post"]
        if marker:
            period = _MARKERS.get(marker.lower())
            if period is None or not 0 <= hour <= 12:  # `午前0:08`, `00:08 a. m.`: hour 0 is 12
                continue
            hour = _twelve_hour(hour, period)
        if hour > 23 or minute > 59 or second > 59:
            continue
        left = (chunk[: time.start()] + " " + chunk[time.end():]).replace(",", " , ")
        words = [w for w in left.split() if not _CONNECTORS.match(w)]
        date_text = " ".join(words)
        parsed = _date(date_text)
        if parsed is None:
            continue
        numbers, named, era = parsed
        return Stamp(numbers, named, hour, minute, second, era, persian, dotted or (numbers is not None and "." in date_text))
    return None


def _twelve_hour(hour: int, period: str) -> int:
    if hour == 0:
        hour = 12  # some locales count the 12-hour clock from 0: 0:08 a. m. is 12:08 a. m.
    if period == "am":
        return 0 if hour == 12 else hour
    if period == "pm":
        return hour if hour == 12 else hour + 12
    # "at night": 9–11 are evening hours, 12–5 the small hours
    return hour + 12 if 6 <= hour <= 11 else (0 if hour == 12 else hour)


def _date(text: str):
    match = _NUMERIC_DATE.match(text)
    if match:
        era = (match["era"] or "").lower()
        return (match["a"], match["b"], match["c"]), None, "ah" if era[:1] in ("ه", "a") else "be" if era else ""
    match = _CJK_DATE.match(text)
    if match:
        return (match["a"], match["b"], match["c"]), None, ""
    for pattern in _NAMED_DATES:
        match = pattern.match(text)
        if match:
            month = _MONTHS[match["mon"].lower()]
            return None, (int(match["day"]), month, int(match["year"]) if match["year"] else None), ""
    return None


def _year(year: int, stamp: Stamp) -> int:
    if year < 100:
        return year + 2000
    return year


def moment(stamp: Stamp, order: str, year: int | None = None) -> datetime:
    """The local time a stamp names, given the file's date order (`dmy`, `mdy`, `ymd`)."""
    if stamp.named is not None:
        day, month, written = stamp.named
        y = written if written is not None else year
        if y is None:
            raise ValueError("no year")
        return datetime(y, month, day, stamp.hour, stamp.minute, stamp.second)
    a, b, c = (int(n) for n in stamp.numbers)
    if len(stamp.numbers[0]) >= 3:
        y, month, day = a, b, c
        written = stamp.numbers[0]
    else:
        y, month, day = {"dmy": (c, b, a), "mdy": (c, a, b), "ymd": (a, b, c)}[order]
        written = stamp.numbers[0] if order == "ymd" else stamp.numbers[2]
    if len(written) >= 3 and y < 1000:
        raise ValueError(f"year {written}")  # `18/03/0000`: a two-digit year is 20YY, a longer one is as written
    if y < 100:
        y += 2000
    if stamp.era == "ah" or (1420 <= y < 1500 and not stamp.persian):
        y, month, day = _from_islamic(y, month, day)
    elif stamp.persian or 1300 <= y < 1420:
        y, month, day = _from_persian(y, month, day)
    elif stamp.era == "be" or y >= 2400:
        y -= 543  # the Thai solar calendar: Buddhist era
    return datetime(y, month, day, stamp.hour, stamp.minute, stamp.second)


def _from_persian(jy: int, jm: int, jd: int) -> tuple[int, int, int]:
    """A Solar Hijri (Persian) date as Gregorian (year, month, day), by the arithmetic
    rule (exact for the years phones write)."""
    if not (1 <= jm <= 12 and 1 <= jd <= (31 if jm <= 6 else 30)):
        raise ValueError(f"no day {jd} in Persian month {jm}")
    y = jy + 1595
    days = -355668 + 365 * y + (y // 33) * 8 + ((y % 33) + 3) // 4 + jd
    days += (jm - 1) * 31 if jm < 7 else (jm - 7) * 30 + 186
    g = date.fromordinal(days + _PERSIAN_OFFSET)
    return g.year, g.month, g.day


_PERSIAN_OFFSET = -365


def _from_islamic(hy: int, hm: int, hd: int) -> tuple[int, int, int]:
    """An Islamic (Hijri) date as Gregorian, by the arithmetic (tabular) calendar; it can
    differ by a day from the sighted or Umm al-Qura calendar a phone may follow."""
    if not (1 <= hm <= 12 and 1 <= hd <= 30):
        raise ValueError(f"no day {hd} in Islamic month {hm}")
    julian_day = hd + (59 * (hm - 1) + 1) // 2 + (hy - 1) * 354 + (3 + 11 * hy) // 30 + 1948439
    g = date.fromordinal(julian_day - 1721425)
    return g.year, g.month, g.day


# ------------------------------------------------------------------ notices and text

# Notices WhatsApp writes into the chat, not messages anyone sent, in the languages it
# writes them. iOS writes them as if the contact (or the group) had sent them, with a
# U+200E mark before the text; Android writes them without an author.
SYSTEM = re.compile(
    r"end-to-end|end‑to‑end|de bout en bout|de extremo a extremo|ponta a ponta|Ende-zu-Ende|koncovým šifrováním|"
    r"сквозн|uçtan uca|مشفرة|رمزگذاری سرتاسری|端到端|エンドツーエンド|종단간|एंड-टू-एंड|mã hóa đầu cuối|מקצה לקצה|"
    r"ต้นทางถึงปลายทาง|punto a punto|"
    r"security code|código de seguridad|código de segurança|code de sécurité|Sicherheitsnummer|codice di sicurezza|"
    r"beveiligingscode|kode keamanan|код безопасности|güvenlik kodu|رمز الأمان|"
    r"is a contact|es un contacto|é um contato|est un contact|ist ein Kontakt|è un contatto|is een contact|"
    r"business account|cuenta de empresa|conta comercial|compte professionnel|"
    r"changed (?:their|his|her) phone number|changed to \+|cambió su número|mudou seu número|alterou o número|"
    r"a changé de numéro|hat die Telefonnummer|hat seine Nummer|ha cambiato numero|heeft het telefoonnummer|"
    r"mengganti nomor|сменил номер|numarasını değiştirdi|"
    r"created (?:the )?group|created this group|creó (?:el )?grupo|criou (?:o )?grupo|a créé (?:le )?groupe|"
    r"hat die Gruppe .*erstellt|ha creato (?:il )?gruppo|heeft groep .*aangemaakt|membuat grup|создал группу|"
    r"\badded\b|\bañadió\b|\bagregó\b|adicionou|a ajouté|hat .* hinzugefügt|ha aggiunto|heeft .* toegevoegd|"
    r"menambahkan|добавил|ekledi|"
    r"\bremoved\b|eliminó a|expulsou|removeu|a retiré|hat .* entfernt|ha rimosso|heeft .* verwijderd|"
    r"mengeluarkan|удалил|çıkardı|"
    r"\bleft\b|salió del grupo|\bsalió\b|\bsaiu\b|est parti|a quitté|hat die Gruppe verlassen|ha abbandonato|"
    r"heeft de groep verlaten|keluar|вышел|ayrıldı|"
    r"\bjoined\b|se unió|entrou|a rejoint|ist .*beigetreten|si è unito|is lid geworden|bergabung|присоединил|katıldı|"
    r"changed the subject|changed this group|changed the group|changed the settings|cambió el (?:asunto|nombre|ícono|icono|la descripción)|"
    r"cambió la (?:descripción|imagen|foto)|mudou o (?:assunto|nome|ícone)|alterou (?:o|a) (?:assunto|nome|descrição|imagem)|"
    r"a modifié (?:le sujet|l’icône|l'icône|la description|le nom)|hat den Betreff|hat das Gruppenbild|"
    r"hat die Gruppenbeschreibung|ha cambiato (?:l'oggetto|il nome|l'immagine|la descrizione)|heeft de (?:groepsnaam|groepsafbeelding|groepsbeschrijving|onderwerp)|"
    r"mengubah (?:subjek|ikon|deskripsi|nama)|изменил (?:тему|название|изображение|описание)|"
    r"deleted this group's icon|group description|group's icon|group icon|"
    r"You're now an admin|ahora eres admin|agora você é admin|vous êtes maintenant admin|jetzt Admin|ora sei un amministratore|"
    r"disappearing messages|message timer|mensajes temporales|mensagens temporárias|messages éphémères|"
    r"selbstlöschende Nachrichten|messaggi effimeri|verdwijnende berichten|pesan sementara|исчезающие сообщения|"
    r"\bpinned\b|fijó un mensaje|fixou uma mensagem|a épinglé|hat eine Nachricht angeheftet|ha fissato|heeft een bericht vastgezet|"
    r"menyematkan|закрепил|sabitledi|"
    r"Waiting for this message|Esperando el mensaje|Aguardando mensagem|En attente de ce message|Warten auf diese Nachricht|"
    r"This chat is with a business|uses a secure service from|Tap to learn more|Toca para obtener más información|"
    r"invite link|requested to join|blocked this contact|unblocked this contact|started a (?:voice |video )?call|"
    r"enlace de invitación|te uniste|mudou a (?:descrição|imagem)|descrição do grupo|lien d['’]invitation|"
    r"avez rejoint|Einladungslink|è uscit[oa]|link di invito|is vertrokken|uitnodigingslink|tautan undangan",
    re.I,
)
# Sentences only WhatsApp writes, recognised without the U+200E mark too (Android writes
# its notices and call records without it): whole lines, fixed phrases, per language.
# Without the mark nothing else is a notice: "Video call, please" is a client's message.
_STRICT = re.compile(
    r"^(?:Messages and calls are end-to-end encrypted\.|Messages to this (?:chat|group) are now secured|"
    r"Los mensajes y las llamadas están cifrados de extremo a extremo\.|"
    r"As mensagens e as chamadas são protegidas com a criptografia de ponta a ponta\.|"
    r"Les messages et les appels sont chiffrés de bout en bout\.|"
    r"Nachrichten und Anrufe sind Ende-zu-Ende-verschlüsselt\.|"
    r"I messaggi e le chiamate sono crittografati end-to-end\.|"
    r"Berichten en gesprekken worden end-to-end versleuteld\.|"
    r"Pesan dan panggilan terenkripsi secara end-to-end\.|Pesan dan panggilan dienkripsi secara end-to-end\.|"
    r"Сообщения и звонки защищены сквозным шифрованием\.)|"
    r"^(?:Your security code with .{1,120} changed\.(?: Tap to learn more\.)?|"
    r"Tu código de seguridad con .{1,120} cambió\.(?: Toca para obtener más información\.)?|"
    r"O seu código de segurança com .{1,120} mudou\.(?: Toque para saber mais\.)?|"
    r"Votre code de sécurité avec .{1,120} a changé\.(?: Appuyez pour en savoir plus\.)?|"
    r"Deine Sicherheitsnummer für .{1,120} hat sich geändert\.(?: Tippe, um mehr zu erfahren\.)?)$",
)
# What follows a call record's comma: its length, or the app's own words.
_CALL_TAIL = (
    r"(?:, (?:\d{1,3}(?::\d\d){1,2}|\d{1,3} ?(?:sec|secs|s|seg|segundos?|secondes?|Sek\.?|secondi|sn|detik|сек\.?|"
    r"sekund|min|mins|minutes?|minutos?|Min\.?|minuti|dk|menit|мин\.?|minut|hr|hrs|h|hours?|horas?|heures?|Std\.?|"
    r"ore|sa|jam|ч\.?|hodin)(?: \d{1,3} ?(?:sec|secs|s|seg|Sek\.?|сек\.?|sn|detik|sekund))?|"
    r"Tap to call back|Click to call back|No answer|Toca para devolver la llamada|Sin respuesta|"
    r"Toque para retornar|Toque para ligar de volta|Appuyez pour rappeler|Tippe, um zurückzurufen|"
    r"Tocca per richiamare|Tik om terug te bellen|Ketuk untuk menelepon balik|Нажмите, чтобы перезвонить|"
    r"Geri aramak için dokunun))?$"
)
# Call records: "Voice call, 19 sec", "Missed video call, Tap to call back", in other languages.
_CALL_NAMES = (
    r"^(?:(?:Missed |Silenced |Group |Missed group |)(?:voice|video) call|"
    r"(?:Llamada|Videollamada)(?: de voz| de video| grupal)?(?: perdida| silenciada)?|"
    r"(?:Chamada|Ligação|Videochamada)(?: de voz| de vídeo| em grupo)?(?: perdida| silenciada)?|"
    r"(?:Appel vocal|Appel vidéo|Appel)(?: manqué| de groupe)?|"
    r"(?:Verpasster |Stummgeschalteter )?(?:Sprachanruf|Videoanruf|Gruppenanruf)|"
    r"(?:Chiamata|Videochiamata)(?: vocale| di gruppo)?(?: persa| silenziata)?|"
    r"(?:Gemiste |Gedempte )?(?:spraakoproep|videogesprek|videobellen|groepsgesprek)|"
    r"Panggilan (?:suara|video)(?: tak terjawab)?|"
    r"(?:Пропущенный )?(?:аудиозвонок|видеозвонок)|"
    r"(?:Cevapsız )?(?:sesli|görüntülü) arama|"
    r"(?:Zmeškaný |Zmeškaný skupinový )?(?:hovor|videohovor|hlasový hovor)|Hlasový hovor|Videohovor)"
)
CALL = re.compile(_CALL_NAMES + _CALL_TAIL, re.I)
# With iOS's mark a call record may end in anything after its comma.
_MARKED_CALL = re.compile(_CALL_NAMES + r"(?:, .{0,60})?$", re.I)
# The words an Android notice's actor is followed by when the notice holds a colon
# (`Ana changed the subject to "Promo: 50%"`): the "author" is then a sentence.
_ACTOR_PHRASE = re.compile(
    r" (?:changed|created|added|removed|left|joined|pinned|turned|set|cambió|creó|añadió|agregó|fijó|mudou|alterou|"
    r"criou|adicionou|a modifié|a créé|a ajouté|hat|ha cambiato|ha creato|heeft|mengubah|membuat|изменил|создал) ",
    re.I,
)
_EDITED = re.compile(
    r"[\u200e ]*<(?:[^<>\n]{0,40}(?:edited|editad|editó|bearbeitet|modifié|modificato|bewerkt|diedit|изменено|"
    r"düzenlendi|upraven|edytowan|تعديل|編集|编辑|編輯|수정)[^<>\n]{0,40})>\s*$",
    re.I,
)
_MARKS = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
_AUTHOR = re.compile(r"^(?P<author>[^:\n]{1,200}?): ?(?P<text>.*)$", re.S)


def _message_part(rest: str) -> tuple[str, str] | None:
    """(author, text) of a header's remainder, or None for a notice WhatsApp wrote itself."""
    match = _AUTHOR.match(rest)
    if not match:
        return None  # no author: group created, encryption, "You were added"…
    author = clean_name(match["author"])
    raw_text = match["text"]
    text = raw_text.lstrip(_MARKS + " ")
    if not author or _ACTOR_PHRASE.search(" " + author + " ") and not _looks_like_name(author):
        return None
    first_line = text.split("\n", 1)[0].strip()
    if "\n" not in text.strip() and (_STRICT.match(first_line) or CALL.match(first_line)):
        return None  # a whole-line notice WhatsApp writes without the mark
    if raw_text.lstrip(" ").startswith("\u200e") and (
            SYSTEM.search(first_line) or _MARKED_CALL.match(first_line.replace("\u200e", ""))):
        return None
    return author, text


def _looks_like_name(author: str) -> bool:
    return len(author.split()) <= 3


def _clean_text(text: str) -> str:
    text = _EDITED.sub("", text)
    return text


# ------------------------------------------------------------------ the chat's name

_PREFIXES = (
    r"WhatsApp[- ]?(?:Chat|chat|Chatt|chatt)|Chat de WhatsApp|Conversa do WhatsApp|Conversa de WhatsApp|"
    r"Discussion WhatsApp|Chat WhatsApp|Chat di WhatsApp|Czat WhatsApp|Чат WhatsApp|Переписка WhatsApp|"
    r"WhatsApp-keskustelu|Συνομιλία WhatsApp|דיאלוג WhatsApp|دردشة WhatsApp|Obrolan WhatsApp|"
    r"Cuộc trò chuyện WhatsApp|WhatsApp-Chat|Konverzace WhatsApp|Chat na WhatsAppu"
)
_LINKS = r"with|mit|con|com|met|avec|dengan|med|z|ze|s|с|cu|مع|עם|với|kanssa"
_CHAT_NAME = re.compile(rf"^(?:{_PREFIXES})(?: ?- ?| ?: ?| (?:{_LINKS}) )(?P<name>.+?)(?: \(\d{{1,3}}\))?$", re.I)
_CHAT_NAME_AFTER = re.compile(r"^(?P<name>.+?) ile WhatsApp Sohbeti(?: \(\d{1,3}\))?$", re.I)
_GENERIC = re.compile(r"^(?:_?chat|whatsapp(?:[ _-]?chat)?|message_\d+|result|export|messages)(?: ?\(\d+\))?$", re.I)


def chat_name(label: str) -> str | None:
    """The chat's name in a file, ZIP or folder name the app wrote, in any locale."""
    stem = label[:-4] if label.lower().endswith((".txt", ".zip")) else label
    for pattern in (_CHAT_NAME, _CHAT_NAME_AFTER):
        match = pattern.match(stem.strip())
        if match:
            name = clean_name(match["name"])
            return name or None
    return None


def names_a_chat(label: str) -> bool:
    return chat_name(label) is not None


def chat_file_name(base: str) -> bool:
    """Whether a file in an archive is a WhatsApp chat: `_chat.txt`, or named like one."""
    return base.lower() == "_chat.txt" or names_a_chat(base)


def _own_name(label: str) -> str | None:
    """A file name the user gave (not one every export has): `marta.txt` → `marta`."""
    stem = os.path.splitext(label)[0].strip()
    if not stem or _GENERIC.match(stem) or stem == "<stdin>":
        return None
    return clean_name(stem) or None


def chat_key(label: str, options, authors: set[str], contact: str | None = None) -> str | None:
    """--chat; else the chat's name the export gives (`WhatsApp Chat with Ana` → `wa:Ana`);
    else, in a one-to-one chat (two authors), the contact iOS names on its own notices
    (`Ana: ‎Messages and calls are end-to-end encrypted…`), else both authors' names; else a
    name the user gave the file; else None. Never who the employee is: importing the same
    file with other --agent names gives the same key."""
    if options.chat:
        return options.chat
    named = chat_name(label)
    if named:
        return "wa:" + named
    people = {normalise(a): a for a in authors}
    if len(people) == 2:
        if contact is not None and normalise(contact) in people:
            return "wa:" + people[normalise(contact)]
        return "wa:" + ", ".join(sorted(people.values(), key=str.casefold))
    own = _own_name(label)
    return "wa:" + own if own else None


def notice_author(rest: str) -> str | None:
    """Whom iOS writes a notice as sent by (the contact, or the group): the author of a
    line whose text starts with the U+200E mark and is a notice."""
    match = _AUTHOR.match(rest)
    if not match or not match["text"].lstrip(" ").startswith("\u200e"):
        return None
    first_line = match["text"].lstrip(_MARKS + " ").split("\n", 1)[0]
    if SYSTEM.search(first_line) or _MARKED_CALL.match(first_line.replace("\u200e", "")):
        return clean_name(match["author"]) or None
    return None


# ------------------------------------------------------------------ reading


def read(stream: BinaryIO, source: str, options, label: str | None = None) -> Iterator[Event | Invalid]:
    label = os.path.basename(source) if label is None else label
    spool = None
    try:
        if not _seekable(stream):
            spool = _spooled(stream, source)
            stream = spool
        survey = _survey(_lines(stream, source), source, getattr(options, "dates", None))
        roles = _roles(survey.authors, label, options)
        key = chat_key(label, options, survey.authors, survey.contact)
        if roles is None:
            raise unresolved(source, key or "", survey.authors)
        if key is None:
            raise InvalidInput(
                f"{source}: nothing in this export names the chat (a group, in a file named "
                f"{excerpt(os.path.basename(label) or source)!r}; authors found: {authors_text(survey.authors)}); "
                "give its chat key with --chat KEY"
            )
        if survey.yearless and getattr(options, "year", None) is None:
            raise InvalidInput(
                f"{source}:{survey.yearless}: the dates in this export have no year; give it with --year YYYY"
            )
        stream.seek(0)
        yield from _messages(_lines(stream, source), source, key, survey, roles, options)
    finally:
        if spool is not None:
            spool.close()


def _seekable(stream) -> bool:
    try:
        return stream.seekable()
    except (OSError, ValueError):
        return False


def _spooled(stream: BinaryIO, source: str):
    """A pipe's bytes kept for the second pass: refused as soon as they cannot be a chat
    (binary, a line over the bound) and beyond MAX_SPOOL, so the disk never fills."""
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)
    size = line = 0
    run = 0  # bytes since the last line break
    try:
        while True:
            chunk = stream.read(1 << 20)
            if not chunk:
                break
            nul = chunk.find(b"\0")
            if nul >= 0:
                where = line + chunk.count(b"\n", 0, nul) + 1
                raise InvalidInput(f"{source}:{where}: binary data (a NUL byte); not a WhatsApp chat export")
            breaks = chunk.count(b"\n")
            run = len(chunk) - chunk.rindex(b"\n") - 1 if breaks else run + len(chunk)
            line += breaks
            if run > MAX_LINE:
                raise InvalidInput(f"{source}:{line + 1}: a line longer than {mib(MAX_LINE)}; not a WhatsApp chat export")
            size += len(chunk)
            if size > MAX_SPOOL:
                raise InvalidInput(f"{source}: larger than {mib(MAX_SPOOL)} read from a pipe; give the file's path")
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


_LONE_CR = re.compile(r"\r(?!\n|$)")


def _lines(stream, source: str) -> Iterator[tuple[int, str]]:
    """Each line's number and text; a lone CR (old Mac line endings) also ends a line."""
    extra = 0  # lines ended by a lone CR so far
    for number, raw in text_lines(stream, source, "a WhatsApp chat export"):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidInput(f"{source}:{number + extra}: not UTF-8 text (byte {error.start + 1})")
        if number == 1:
            line = line.lstrip("\ufeff")
        line = line.rstrip("\r\n")
        if "\r" not in line:
            yield number + extra, line
            continue
        pieces = _LONE_CR.split(line)
        for piece in pieces:
            yield number + extra, piece.rstrip("\r")
            extra += 1
        extra -= 1


@dataclass
class _Survey:
    layout: str | None
    order: str
    authors: set
    yearless: int  # the first line whose date has no year, or 0
    contact: str | None = None  # whom iOS's first notice is written as sent by


def _survey(lines, source: str, dates: str | None = None) -> _Survey:
    """The layout, the date order (`dmy`, `mdy` or `ymd`) and the authors, from every header.
    `dates` (--dates: `dmy` or `mdy`) gives the day/month order instead of inferring it
    (a year written first, `2022/03/18`, is year-month-day whatever it says)."""
    forward = {"dmy": 0, "mdy": 0}
    previous: dict[str, tuple] = {}
    decided = None
    dot = False
    layout = None
    yearless = 0
    authors: set[str] = set()
    contact = None
    first_text = 0
    for number, line in lines:
        header = header_line(line, layout)
        if header is None:
            if layout is None and line.strip() and not first_text:
                first_text = number
            continue
        if layout is None:
            if first_text:
                raise InvalidInput(f"{source}:{first_text}: not a WhatsApp chat export (no date at the start of the line)")
            layout = header.layout
        message = _message_part(header.rest)
        if message:
            authors.add(message[0])
        elif contact is None:
            contact = notice_author(header.rest)
        stamp = header.stamp
        if stamp.named is not None:
            if stamp.named[2] is None and not yearless:
                yearless = number
            continue
        if decided:
            continue
        a, b, c = stamp.numbers
        if len(a) >= 3:
            decided = "ymd"
            continue
        a, b, c = int(a), int(b), int(c)
        if a > 12 or b > 12:
            decided = "dmy" if a > 12 else "mdy"
            continue
        dot = dot or stamp.dot
        for order, key in (("dmy", (c, b, a)), ("mdy", (c, a, b))):
            if order in previous and key >= previous[order]:
                forward[order] += 1
            previous[order] = key
    if layout is None:
        raise InvalidInput(f"{source}:1: not a WhatsApp chat export (no message header found)")
    if decided != "ymd" and dates:
        decided = dates
    if decided is None:
        decided = "mdy" if forward["mdy"] > forward["dmy"] and not dot else "dmy"
    return _Survey(layout, decided, authors, yearless, contact)


def _messages(lines, source: str, key: str, survey: _Survey, roles: Roles, options) -> Iterator[Event | Invalid]:
    pending: list | None = None  # [line, at, author, text lines, size] of the message being read
    year = getattr(options, "year", None)
    last_month = None
    for number, line in lines:
        header = header_line(line, survey.layout)
        if header is None:
            if pending is not None:
                pending[4] += len(line) + 1
                if pending[4] > MAX_TEXT:
                    raise InvalidInput(f"{source}:{pending[0]}: a message longer than {mib(MAX_TEXT)}")
                pending[3].append(line)
            continue
        if pending is not None:
            yield _event(pending, key, roles, source)
            pending = None
        stamp = header.stamp
        if stamp.named is not None and stamp.named[2] is None and year is not None:
            if last_month is not None and stamp.named[1] < last_month - 6:
                year += 1  # the dates ran over New Year
            last_month = stamp.named[1]
        try:
            at = times.stored(moment(stamp, survey.order, year).replace(tzinfo=options.tz))
        except (ValueError, OverflowError) as error:
            yield Invalid(source, number, f"impossible date or time: {error}")
            continue
        message = _message_part(header.rest)
        if message is not None:
            pending = [number, at, message[0], [message[1]], len(message[1])]
    if pending is not None:
        yield _event(pending, key, roles, source)


def _event(pending: list, key: str, roles: Roles, source: str) -> Event:
    number, at, author, text_lines, _ = pending
    direction = roles.direction(author)
    return Event(
        "message", key, at, direction=direction, author=author, text=_clean_text("\n".join(text_lines)),
        channel="whatsapp", contact=author if direction == "client" else None, source=source, line=number,
    )


def _roles(authors: set[str], label: str, options) -> Roles | None:
    """--agent names the employees; else a chat named after one of exactly two authors
    (`WhatsApp Chat with Ana.txt`) makes Ana the client and the other the employee."""
    if options.agents:
        return Roles(options.agents)
    named = chat_name(label)
    if named and len(authors) == 2:
        others = [a for a in authors if normalise(a) != normalise(named)]
        if len(others) == 1:
            return Roles(tuple(others))
    return None
