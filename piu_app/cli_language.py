"""Click's own messages (usage, --help, errors) in French, the language of the `piu` command.

Click looks its messages up with the standard library's `gettext`, which reads compiled `.mo` files
chosen by the environment's locale variables. PIU keeps no generated file and speaks the city's
language whatever the laptop's system language, so the messages the command shows are given here
and handed to the click modules that ask for them (`install`). A message missing here stays in
English: tests/test_cli_words.py checks the ones a user meets.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

# msgid -> French (the placeholders are click's own: {name!r}, %(prog)s…)
MESSAGES: dict[str, str] = {
    "Usage:": "Utilisation :",
    "Options": "Options",
    "Commands": "Commandes",
    "Positional arguments": "Arguments",
    "Show this message and exit.": "Afficher cette aide et quitter.",
    "Show the version and exit.": "Afficher la version et quitter.",
    "%(prog)s, version %(version)s": "%(prog)s, version %(version)s",
    "Error: {message}": "Erreur : {message}",
    "Try '{command} {option}' for help.": "Essayez « {command} {option} » pour l'aide.",
    "Invalid value for {param_hint}: {message}": "Valeur invalide pour {param_hint} : {message}",
    "Invalid value: {message}": "Valeur invalide : {message}",
    "Missing argument": "Argument manquant",
    "Missing option": "Option manquante",
    "Missing parameter": "Paramètre manquant",
    "Missing parameter: {param_name}": "Paramètre manquant : {param_name}",
    "Missing {param_type}": "{param_type} manquant",
    "Missing command.": "Commande manquante.",
    "No such command {name!r}.": "Commande inconnue : {name!r}.",
    "No such option {name!r}.": "Option inconnue : {name!r}.",
    "Option {name!r} does not take a value.": "L'option {name!r} ne prend pas de valeur.",
    "Argument {name!r} takes {nargs} values.": "L'argument {name!r} prend {nargs} valeurs.",
    "Aborted!": "Abandon.",
    "Error: The two entered values do not match.": "Erreur : les deux saisies diffèrent.",
    "Error: invalid input": "Erreur : saisie invalide",
    "Repeat for confirmation": "Répétez pour confirmer",
    "Do you want to continue?": "Voulez-vous continuer ?",
    "Confirm the action without prompting.": "Confirmer sans poser de question.",
    "default: {default}": "par défaut : {default}",
    "env var: {var}": "variable d'environnement : {var}",
    "required": "obligatoire",
    "file": "fichier",
    "directory": "dossier",
    "path": "chemin",
    "{name} {filename!r} does not exist.": "{name} {filename!r} introuvable.",
    "{name} {filename!r} is a directory.": "{name} {filename!r} est un dossier.",
    "{name} {filename!r} is a file.": "{name} {filename!r} est un fichier.",
    "{name} {filename!r} is not readable.": "{name} {filename!r} illisible (droits).",
    "{name} {filename!r} is not writable.": "{name} {filename!r} non modifiable (droits).",
    "{name} {filename!r} is not executable.": "{name} {filename!r} n'est pas exécutable.",
    "Could not open file {filename!r}: {message}": "Impossible d'ouvrir le fichier {filename!r} : {message}",
    "{value!r} is not a valid {number_type}.": "{value!r} n'est pas un {number_type} valide.",
    "{value} is not in the range {range}.": "{value} n'est pas dans l'intervalle {range}.",
    "{value!r} is not a valid UUID.": "{value!r} n'est pas un identifiant UUID valide.",
    "integer": "nombre entier",
    "float": "nombre",
}

# (singular, plural) -> (French singular, French plural)
PLURALS: dict[tuple[str, str], tuple[str, str]] = {
    ("Got unexpected extra argument ({args})", "Got unexpected extra arguments ({args})"):
        ("Argument en trop : {args}", "Arguments en trop : {args}"),
    ("{value!r} is not {choice}.", "{value!r} is not one of {choices}."):
        ("{value!r} n'est pas {choice}.", "{value!r} n'est pas l'une des valeurs {choices}."),
    ("Option {name!r} requires an argument.", "Option {name!r} requires {nargs} arguments."):
        ("L'option {name!r} attend une valeur.", "L'option {name!r} attend {nargs} valeurs."),
    ("Did you mean {possibility}?", "(Did you mean one of: {possibilities}?)"):
        ("Vouliez-vous dire {possibility} ?", "(Vouliez-vous dire : {possibilities} ?)"),
}

# The click modules that look messages up, each with `_` and perhaps `ngettext` taken from gettext.
CLICK_MODULES = ("click.core", "click.exceptions", "click.types", "click.parser", "click.formatting",
                 "click.decorators", "click.termui", "click.utils")


def gettext(message: str) -> str:
    return MESSAGES.get(message, message)


def ngettext(singular: str, plural: str, n: int) -> str:
    one, many = PLURALS.get((singular, plural), (singular, plural))
    return one if n == 1 else many


def install() -> None:
    """Make click speak French in this process (its messages only; PIU's own are French already)."""
    for name in CLICK_MODULES:
        module = importlib.import_module(name)
        replacements: dict[str, Callable] = {"_": gettext, "ngettext": ngettext}
        for attr, function in replacements.items():
            if hasattr(module, attr):
                setattr(module, attr, function)
