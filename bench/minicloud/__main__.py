"""`python -m bench.minicloud --state-dir DIR --cloud NAME --network ID`: the guest player
daemon that `osbench minicloud up` starts (see `bench.minicloud.guests`)."""

from bench.minicloud.guests import main

raise SystemExit(main())
