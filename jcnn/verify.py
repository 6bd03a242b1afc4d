"""``jcnn verify``: every op, layer, loss, optimizer and zoo model against PyTorch.

The checks live in :mod:`jcnn.interop.verify`, beside the state_dict conversions: ``jcnn.interop`` is the
only part of the library that imports torch. This module is the public entry point (``jcnn verify``,
``python -m jcnn.verify``); importing it needs torch.
"""

from jcnn.interop.verify import (  # noqa: F401
    Check,
    Result,
    add_arguments,
    all_checks,
    format_table,
    main,
    run,
    run_check,
    select,
)

if __name__ == "__main__":
    raise SystemExit(main())
