"""``python -m gradcourse.compile_cache [--warm [NOTEBOOK ...]] [--info] [--clear]``: see the package docstring."""
import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
