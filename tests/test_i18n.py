"""The English catalogue covers every French string of the code, keeps its placeholders and compiles.

French is the source language (msgids are French). The strings are extracted here, in process, with
the same map (`piu_app/babel.cfg`) and keywords as `scripts/update_translations.sh`; a string found in
the code but missing, empty or fuzzy in `translations/en/LC_MESSAGES/messages.po` fails the test.
Fix: run `scripts/update_translations.sh`, then translate the new entries of the `.po`.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from babel.messages import mofile, pofile
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir

try:  # Babel >= 2.14
    from babel.messages.frontend import parse_mapping_cfg as _parse_mapping
except ImportError:  # pragma: no cover - older Babel
    from babel.messages.frontend import parse_mapping as _parse_mapping

ROOT = Path(__file__).resolve().parents[1]
BABEL_CFG = ROOT / "piu_app" / "babel.cfg"
EN_PO = ROOT / "piu_app" / "translations" / "en" / "LC_MESSAGES" / "messages.po"
FIX = "run scripts/update_translations.sh, then translate the listed entries in " + str(
    EN_PO.relative_to(ROOT)
)

# Same keywords as `pybabel extract -k _l -k lazy_gettext` (the defaults cover _, gettext, ngettext...).
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
# Resolve the Jinja extractor by its import path, so it works even without installed entry points.
METHODS = {"jinja2": "jinja2.ext:babel_extract"}

# Python %-format directives, as babel recognises them; "%%" is an escaped percent sign, not a placeholder.
_PLACEHOLDER = re.compile(
    r"%(?:\(([\w]*)\))?([-#0 +]?(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?)([diouxXeEfFgGcrs%])"
)


def _placeholders(text: str) -> list[str]:
    found = []
    for match in _PLACEHOLDER.finditer(text):
        name, _flags, kind = match.groups()
        if kind == "%":
            continue
        found.append(f"%({name}){kind}" if name is not None else f"%{kind}")
    return sorted(found)


def _load_en():
    with EN_PO.open("rb") as fh:
        return pofile.read_po(fh, locale="en")


def _extract() -> dict[tuple[str | tuple[str, ...], str | None], set[str]]:
    """Return {(msgid, context): {"file:line", ...}} for every translatable string in the code."""
    with BABEL_CFG.open(encoding="utf-8") as fh:
        method_map, options_map = _parse_mapping(fh, str(BABEL_CFG))
    method_map = [(pattern, METHODS.get(method, method)) for pattern, method in method_map]
    found: dict[tuple[str | tuple[str, ...], str | None], set[str]] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS, strip_comment_tags=True
    ):
        if isinstance(message, (list, tuple)):
            message = tuple(message)
            if not message[0]:
                continue
        elif not message:
            continue
        found.setdefault((message, context), set()).add(f"{filename}:{lineno}")
    return found


@pytest.fixture(scope="module")
def en_catalogue():
    assert EN_PO.is_file(), f"{EN_PO} is missing: {FIX}"
    return _load_en()


def test_extraction_finds_python_and_template_strings():
    found = _extract()
    places = {place.split(":")[0] for where in found.values() for place in where}
    assert any(p.endswith(".py") for p in places), "no string extracted from the Python code"
    assert any(p.endswith(".html") for p in places), "no string extracted from the Jinja templates"
    assert any(isinstance(msgid, tuple) for msgid, _ctx in found), "no ngettext plural extracted"


def test_every_code_string_is_translated(en_catalogue):
    problems = []
    for (msgid, context), where in sorted(_extract().items(), key=lambda item: str(item[0])):
        singular = msgid[0] if isinstance(msgid, tuple) else msgid
        label = (
            repr(msgid) + (f" [context {context!r}]" if context else "") + f"  ({', '.join(sorted(where))})"
        )
        entry = en_catalogue.get(singular, context=context)
        if entry is None:
            problems.append(f"missing:  {label}")
            continue
        if entry.fuzzy:
            problems.append(f"fuzzy:    {label}")
        if isinstance(msgid, tuple):
            if not isinstance(entry.id, tuple) or entry.id[1] != msgid[1]:
                problems.append(f"plural msgid_plural differs from the code: {label}")
                continue
            strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
            if len(strings) != en_catalogue.num_plurals or not all(s.strip() for s in strings):
                problems.append(f"empty:    {label}")
        elif isinstance(entry.id, tuple):
            problems.append(f"code uses it as a singular but the .po has a plural: {label}")
        elif not (entry.string or "").strip():
            problems.append(f"empty:    {label}")
    assert not problems, f"{len(problems)} untranslated string(s) ({FIX}):\n" + "\n".join(problems)


def test_translations_keep_the_placeholders(en_catalogue):
    problems = []
    for message in en_catalogue:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        expected = _placeholders(ids[0])
        plural_expected = _placeholders(ids[-1])
        for index, text in enumerate(strings):
            if not text:
                continue  # reported by test_every_code_string_is_translated
            # A plural's singular form may drop the count (e.g. "one record"), never add unknown names.
            reference = expected if index == 0 else plural_expected
            got = _placeholders(text)
            if isinstance(message.id, tuple) and index == 0:
                ok = set(got) <= set(reference) | set(plural_expected)
            else:
                ok = got == reference
            if not ok:
                problems.append(f"{message.id!r} -> {text!r}: expected {reference}, got {got}")
        # A msgid without format directives is never %-formatted: its translation must not need it either.
        if "python-format" not in message.flags and any(_placeholders(s) or "%%" in s for s in strings if s):
            problems.append(
                f"{message.id!r}: translation has %-directives but the source is not python-format"
            )
    for message, errors in en_catalogue.check():
        for error in errors:
            problems.append(f"{message.id!r}: {error}")
    assert not problems, "placeholder mismatches:\n" + "\n".join(problems)


def test_catalogue_compiles(en_catalogue):
    assert en_catalogue.locale is not None and str(en_catalogue.locale) == "en"
    assert en_catalogue.num_plurals == 2
    buffer = io.BytesIO()
    mofile.write_mo(buffer, en_catalogue, use_fuzzy=False)
    assert buffer.getbuffer().nbytes > 0
    buffer.seek(0)
    compiled = mofile.read_mo(buffer)
    translated = [m for m in en_catalogue if m.id and m.string and not m.fuzzy]
    assert len(compiled) == len(translated)


def test_app_loader_translates(en_catalogue):
    """piu_app.i18n compiles the same file in memory: it must return the .po's strings."""
    from piu_app.i18n import load_catalogue

    translations = load_catalogue("en")
    entries = [m for m in en_catalogue if m.id and not m.fuzzy]
    singular = next(m for m in entries if not isinstance(m.id, tuple) and m.string)
    assert translations.gettext(singular.id) == singular.string
    plural = next((m for m in entries if isinstance(m.id, tuple) and all(m.string)), None)
    if plural is not None:
        assert translations.ngettext(plural.id[0], plural.id[1], 1) == plural.string[0]
        assert translations.ngettext(plural.id[0], plural.id[1], 5) == plural.string[1]
