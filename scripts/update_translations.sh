#!/usr/bin/env bash
# Refresh the translation catalogues after code or template changes.
#
#   scripts/update_translations.sh
#
# 1. extracts every French source string (Python: _(), gettext, ngettext, _l, lazy_gettext;
#    Jinja: _(), gettext(), ngettext(), {% trans %}) into piu_app/translations/messages.pot;
# 2. merges it into the English catalogue (creating it if missing), without fuzzy guesses and
#    dropping obsolete entries so stale strings vanish.
# Then translate the new/empty entries in piu_app/translations/en/LC_MESSAGES/messages.po;
# tests/test_i18n.py fails while any string is untranslated.
# No .mo is produced: piu_app/i18n.py compiles the .po in memory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -x .venv/bin/pybabel ]]; then
    PYBABEL=.venv/bin/pybabel
else
    PYBABEL=pybabel
fi

TRANSLATIONS=piu_app/translations
POT="$TRANSLATIONS/messages.pot"
LOCALE=en

# The babel.cfg patterns are relative to the repository root, hence the input directory ".".
"$PYBABEL" extract \
    -F piu_app/babel.cfg \
    -k _l -k lazy_gettext \
    --no-location \
    --sort-output \
    --project=PIU \
    --version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' piu_app/__init__.py)" \
    --copyright-holder="PIU contributors" \
    -o "$POT" \
    .

if [[ -f "$TRANSLATIONS/$LOCALE/LC_MESSAGES/messages.po" ]]; then
    "$PYBABEL" update \
        -i "$POT" \
        -d "$TRANSLATIONS" \
        -l "$LOCALE" \
        --no-fuzzy-matching \
        --ignore-obsolete
else
    "$PYBABEL" init \
        -i "$POT" \
        -d "$TRANSLATIONS" \
        -l "$LOCALE"
fi
