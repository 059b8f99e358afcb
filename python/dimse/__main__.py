"""``python -m dimse``: the same as the ``dimse`` console script (``python -m dimse
selftest`` checks that this build works)."""

from __future__ import annotations

import sys

from dimse.apps import main

if __name__ == "__main__":
    sys.exit(main())
