"""PyInstaller entry point for the frozen `piu` executable (same as the `piu` console script)."""

from piu_app.cli import main

if __name__ == "__main__":
    main()
