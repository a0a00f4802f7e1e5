"""``python -m contactless``: the same as the ``contactless`` command."""

from .cli import main

if __name__ == "__main__":
    main()
