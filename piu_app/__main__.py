"""`python -m piu_app` starts PIU like the `piu` command."""

from piu_app.cli import main

main()
