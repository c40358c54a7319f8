"""``python -m scratchnet.predict``: the command lives in ``scratchnet.cli.predict``; this
module keeps its old name and import path."""
import sys

from .cli.predict import main, write_grad_cam

__all__ = ["main", "write_grad_cam"]

if __name__ == "__main__":
    sys.exit(main())
