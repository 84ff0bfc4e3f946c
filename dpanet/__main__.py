import sys

from dpanet.cli import main

sys.exit(main())
