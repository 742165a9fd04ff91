import sys

from t2i_guidance.search.cli import main

sys.exit(main())
