import sys

from simulators.payment.upos.cli import main

sys.exit(main())
