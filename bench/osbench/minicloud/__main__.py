"""`python -m osbench.minicloud --state-dir DIR --cloud NAME --network ID`: the guest player
daemon that `osbench minicloud up` starts (see `osbench.minicloud.guests`)."""

from osbench.minicloud.guests import main

raise SystemExit(main())
