"""The form of any record type, built from its description in the registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import URL, Email, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ..database import fold
from ..registry import RECORD_TYPES, Field, RecordType
from ..services import records as record_service
from ..services import vocabularies
from .base import Mandatory, PiuForm, length
from .fields import LocaleFloatField, LocaleIntegerField

VISIBILITY_CHOICES = [("private", _l("Privé (local)")), ("network", _l("Réseau")), ("public", _l("Public"))]
SCORE_CHOICES = [("", _l("non évalué")), ("1", "1"), ("2", "2"), ("3", "3"), ("4", "4"), ("5", "5")]


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class RecordFormBase(PiuForm):
    visibility = SelectField(_l("Niveau de partage"), choices=VISIBILITY_CHOICES)
    draft = BooleanField(_l("Brouillon (à compléter)"))
    version = HiddenField()

    record_type: RecordType
    pick_rows = 0  # rows of each link picker (new records only)

    def scores_field_names(self) -> list[tuple[str, Any]]:
        return getattr(self, "_score_fields", [])

    @property
    def has_name_pickers(self) -> bool:
        return any(isinstance(f, RecordNameField) for f in self)


def _wtf_field(f: Field, lang: str) -> Any:
    validators: list[Any] = [Optional()] + ([Mandatory()] if f.required else [])
    kw: dict[str, Any] = {"description": f.help or ""}
    label = f.label
    if f.kind in ("text", "url", "email"):
        if f.max_length:
            validators.append(length(f.max_length))
        if f.kind == "url":
            validators.append(URL(require_tld=False, message=_l("Adresse web attendue (https://…).")))
        if f.kind == "email":
            validators.append(Email(message=_l("Adresse de courriel invalide."), check_deliverability=False))
        return StringField(label, validators=validators, **kw)
    if f.kind == "textarea":
        if f.max_length:
            validators.append(length(f.max_length))
        return TextAreaField(label, validators=validators, **kw)
    if f.kind == "int":
        return LocaleIntegerField(label, validators=validators, **kw)
    if f.kind == "float":
        return LocaleFloatField(label, validators=validators, **kw)
    if f.kind == "date":
        return DateField(label, validators=validators, **kw)
    if f.kind == "bool":
        return BooleanField(label, **kw)
    if f.kind == "vocab":
        return SelectField(label, choices=[("", "—")] + vocabularies.choices(f.vocab, lang), validators=validators, **kw)
    if f.kind == "vocab_list":
        return MultiCheckboxField(label, choices=vocabularies.choices(f.vocab, lang), validators=validators, **kw)
    if f.kind == "themes":
        return MultiCheckboxField(label, choices=[(t.code, t.label(lang)) for t in vocabularies.themes()],
                                  validators=validators, **kw)
    if f.kind == "ref":
        target = RECORD_TYPES[f.ref]
        options = record_service.choices(target, limit=REF_SELECT_MAX + 1)
        if len(options) > REF_SELECT_MAX:
            return RecordNameField(label, validators=validators, target=target, **kw)
        return SelectField(label, choices=[("", "—"), *options], validators=validators, **kw)
    raise ValueError(f"no form field for kind {f.kind}")


PICK_ROWS = 3  # links offered on a new record's form; more are added from its page


def new_record_choices(target: RecordType) -> list[Field]:
    """The required choices a record made from a typed name needs besides its name (an organisation's type)."""
    return [f for f in target.fields if f.required and f.kind == "vocab"]


def _pick_fields(rt: RecordType, lang: str) -> dict[str, Any]:
    """Per link of `rt` (carriers, people…), PICK_ROWS rows: a typed name, a role, and once asked, the
    choice among the matches ("new" to create it, "skip" to leave it out); see `picks`."""
    attrs: dict[str, Any] = {}
    for link in rt.links:
        roles = vocabularies.choices(link.role_vocab, lang)
        for i in range(PICK_ROWS):
            prefix = f"pick__{link.name}__{i}"
            attrs[f"{prefix}__q"] = StringField(_l("Nom"), validators=[Optional(), length(200)])
            attrs[f"{prefix}__choice"] = HiddenField(validators=[Optional(), length(40)])
            attrs[f"{prefix}__role"] = SelectField(_l("Rôle"), choices=roles, validators=[Optional()])
            for f in new_record_choices(RECORD_TYPES[link.target]):
                attrs[f"{prefix}__new__{f.name}"] = SelectField(
                    f.label, choices=[("", "—")] + vocabularies.choices(f.vocab, lang), validators=[Optional()])
    return attrs


@dataclass
class Pick:
    """One row of a link picker as posted, and what the register offers for it."""

    link: Any
    index: int
    text: str
    choice: str   # a uid, "new", "skip" or "" (not decided yet)
    role: str
    new_values: dict[str, str]
    matches: list[Any] = field(default_factory=list)
    asked: bool = False  # the matches are shown: the user must choose

    @property
    def prefix(self) -> str:
        return f"pick__{self.link.name}__{self.index}"


def picks(form: RecordFormBase) -> list[Pick]:
    """Return the filled rows of the link pickers of a posted form (empty rows and "skip" are left out)."""
    rt = form.record_type
    found = []
    for link in rt.links:
        for i in range(PICK_ROWS):
            prefix = f"pick__{link.name}__{i}"
            if not hasattr(form, f"{prefix}__q"):
                return []
            text = " ".join((getattr(form, f"{prefix}__q").data or "").split())
            choice = (getattr(form, f"{prefix}__choice").data or "").strip()
            if not text and choice in ("", "new"):
                continue
            new_values = {f.name: getattr(form, f"{prefix}__new__{f.name}").data or ""
                          for f in new_record_choices(RECORD_TYPES[link.target])}
            found.append(Pick(link, i, text, choice, getattr(form, f"{prefix}__role").data or "", new_values))
    return found


def build_form_class(rt: RecordType, lang: str, *, with_links: bool = False) -> type[RecordFormBase]:
    """Return a form class with one field per field of `rt` (choices read now from the database), and
    with `with_links` the pickers of its links (a new record's carriers, people…)."""
    attrs: dict[str, Any] = {"record_type": rt, "pick_rows": PICK_ROWS if with_links and rt.links else 0}
    if with_links:
        attrs.update(_pick_fields(rt, lang))
    score_fields: list[tuple[str, Any]] = []
    for f in rt.fields:
        if f.kind == "scores":
            for term in vocabularies.terms(f.vocab):
                name = f"score__{term.code}"
                attrs[name] = SelectField(term.label(lang), choices=SCORE_CHOICES, validators=[Optional()])
                score_fields.append((name, term))
        else:
            attrs[f.name] = _wtf_field(f, lang)
    attrs["_score_fields"] = score_fields
    return type(f"{rt.model.__name__}Form", (RecordFormBase,), attrs)


def _keep_choice(field: Any, value: str, label: str) -> None:
    """Offer the record's current value even if it is no longer listed (deleted link, retired term),
    so that saving the form never silently drops it."""
    if value and value not in {choice[0] for choice in field.choices}:
        field.choices = [*field.choices, (value, label)]


def keep_current_choices(form: RecordFormBase, record: Any) -> None:
    """On a posted edit form, accept the values the record already holds (see `_keep_choice`)."""
    for f in form.record_type.fields:
        if f.kind == "ref" and getattr(record, f.name) is not None and hasattr(getattr(form, f.name), "choices"):
            target = getattr(record, f.name)
            _keep_choice(getattr(form, f.name), target.uid, RECORD_TYPES[f.ref].title_of(target))
        elif f.kind == "vocab" and getattr(record, f.column):
            _keep_choice(getattr(form, f.name), getattr(record, f.column), getattr(record, f.column))


def form_values(form: RecordFormBase) -> dict[str, Any]:
    """Return what the form holds, in the shape the records service takes."""
    rt = form.record_type
    values: dict[str, Any] = {}
    for f in rt.fields:
        if f.kind == "scores":
            values[f.name] = {term.code: getattr(form, name).data for name, term in form.scores_field_names()}
        else:
            values[f.name] = getattr(form, f.name).data
    values["visibility"] = form.visibility.data
    values["draft"] = form.draft.data
    return values


def fill_from_record(form: RecordFormBase, record: Any) -> None:
    """Put a record's current values in the form (for the edit page)."""
    rt = form.record_type
    for f in rt.fields:
        if f.kind == "scores":
            current = {s.criterion: str(s.score) for s in record.scores}
            for name, term in form.scores_field_names():
                getattr(form, name).data = current.get(term.code, "")
        elif f.kind == "ref" and isinstance(getattr(form, f.name), RecordNameField):
            getattr(form, f.name).set_record(getattr(record, f.name))
        elif f.kind == "ref":
            target = getattr(record, f.name)
            getattr(form, f.name).data = target.uid if target is not None else ""
            _keep_choice(getattr(form, f.name), target.uid if target is not None else "",
                         RECORD_TYPES[f.ref].title_of(target) if target is not None else "")
        elif f.kind == "themes":
            getattr(form, f.name).data = [t.code for t in getattr(record, f.name)]
        elif f.kind == "vocab_list":
            getattr(form, f.name).data = [c for c in (getattr(record, f.column) or "").split(";") if c]
        else:
            getattr(form, f.name).data = getattr(record, f.column)
            if f.kind == "vocab":
                _keep_choice(getattr(form, f.name), getattr(record, f.column), getattr(record, f.column))
    form.visibility.data = record.visibility
    form.draft.data = record.draft
    form.version.data = str(record.version)


def build_link_form(link: Any, lang: str) -> Any:
    """Return the form that adds a link from a record's page: a typed name, a role, and the required
    choices of a record created from that name (see `new_record_choices`)."""
    from .documents import LinkForm

    attrs = {f"new__{f.name}": SelectField(f.label, choices=[("", "—")] + vocabularies.choices(f.vocab, lang),
                                           validators=[Optional()])
             for f in new_record_choices(RECORD_TYPES[link.target])}
    form = type("LinkPickForm", (LinkForm,), attrs)(prefix=link.name)
    form.role.choices = vocabularies.choices(link.role_vocab, lang)
    return form


# A link to a record is a select while the target type has at most this many live records; beyond, it
# is a name picker: a select of 100 000 innovations weighs megabytes, and one cut at 2 000 hid the rest.
REF_SELECT_MAX = 200


class RecordNameField(StringField):
    """A link to one record typed by its name (`<name>`), with the chosen record's uid alongside
    (`<name>__uid`, set by the datalist suggestions or by the choice offered after an ambiguous name).

    `data` is the uid ("" for no link), as a select's would be; `text` is what the user typed. Without
    JavaScript a name that matches one record exactly is linked; otherwise the form comes back with
    the matching records to choose from."""

    def __init__(self, label: Any = None, validators: Any = None, *, target: RecordType, **kwargs: Any) -> None:
        super().__init__(label, validators, **kwargs)
        self.target = target
        self.text = ""
        self.candidates: list[Any] = []

    def process_formdata(self, valuelist: list[Any]) -> None:
        self.text = " ".join(str(valuelist[0] if valuelist else "").split())[:200]
        self.data = ""

    def process(self, formdata: Any, data: Any = None, extra_filters: Any = None) -> None:
        super().process(formdata, data, extra_filters)
        self.chosen_uid = str(formdata.get(f"{self.name}__uid", "") if formdata else "")[:40]
        if not formdata:
            self.data = data or ""

    def _value(self) -> str:
        return self.text

    @property
    def lookup_endpoint(self) -> str:
        return f"{self.target.key}.lookup"

    def set_record(self, record: Any) -> None:
        """Show an existing link (the edit page, or `?innovation=<uid>` on a new record's page)."""
        self.data = record.uid if record is not None else ""
        self.text = self.target.title_of(record) if record is not None else ""
        self.chosen_uid = self.data

    def pre_validate(self, form: Any) -> None:
        from wtforms.validators import ValidationError

        self.data = ""
        if not self.text:
            return
        chosen = self.chosen_uid and record_service.get_live(self.target, self.chosen_uid)
        if chosen and (fold(self.target.title_of(chosen)) == fold(self.text)
                       or self.chosen_uid == self.text):
            self.data = chosen.uid
            return
        matches = record_service.lookup(self.target, self.text, limit=8)
        exact = [m for m in matches if m.exact]
        if len(exact) == 1:
            self.data = exact[0].uid
            return
        self.candidates = exact or matches
        if self.candidates:
            raise ValidationError(_l("Plusieurs fiches correspondent à ce nom : choisissez-en une ci-dessous, "
                                     "puis enregistrez."))
        raise ValidationError(_l("Aucune fiche « %(name)s » : vérifiez le nom, ou créez d'abord la fiche.",
                                 name=self.text))
