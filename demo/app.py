"""Run the demo as a script (``python demo/app.py [INDEX_DIR]``), as hosting services expect."""

from __future__ import annotations

import sys

from semsearch.cli import main

# The app itself lives in the installed package (semsearch.demo) so that `semsearch demo` works
# from any directory; this file only gives it the conventional entry point.
if __name__ == "__main__":
    raise SystemExit(main(["demo", "--index", *sys.argv[1:2]] if sys.argv[1:] else ["demo"]))
