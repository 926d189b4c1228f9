"""ndis_offload.cli

The command line does no floating-point linear algebra (numpy's integer ``@`` does not call
BLAS), so numpy's OpenBLAS gets one thread unless the user chose otherwise: by default it
starts a thread per core at ``import numpy`` that spins waiting for work, which cost every
command about 0.1 s of start-up on a busy 2-core machine and took a core from ``pcap fix``'s
own worker processes. Set here, before anything below imports numpy.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
