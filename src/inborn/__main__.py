import sys

from inborn.cli import main

sys.exit(main())
