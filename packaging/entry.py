"""PyInstaller's entry script: the same main() that the `imgsim-desktop` gui-script runs."""

import sys

from imgsim_desktop.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
