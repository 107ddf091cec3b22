import sys

from swintormer.cli import main

sys.exit(main())
