import sys

from migration.cli import main

sys.exit(main())
