"""``python -m kennel.trainer``: the script SageMaker-style platforms run."""

from kennel.trainer import main

raise SystemExit(main())
