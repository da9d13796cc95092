"""python -m fp8quant {bench,prebuild} ..."""

import sys

from .cli import main

sys.exit(main())
