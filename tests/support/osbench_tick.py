"""`osbench` with the test-only `tick` kind registered, for subprocess tests."""

import sys

from osbench.cli.program import main
from tests.support.tickkind import register

register()
sys.exit(main())
